/** The mirror's errors that become answers. */

/** An answer that is not a file: the status and a message for the client. */
export class MirrorError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'MirrorError';
    this.status = status;
  }
}

/** The fill failed; readers throw this and the clients' sockets are destroyed. */
export class FillFailedError extends Error {
  readonly status: number;
  /** One short line without the URL, e.g. `SHA-512 does not match FILE.DIGESTS`. */
  readonly brief: string;
  constructor(message: string, status = 502, brief?: string) {
    super(message);
    this.name = 'FillFailedError';
    this.status = status;
    this.brief = brief ?? message;
  }
}
