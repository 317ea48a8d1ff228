/** An answer that is not a file: the status and a message for the client. */
export class MirrorError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'MirrorError';
    this.status = status;
  }
}
