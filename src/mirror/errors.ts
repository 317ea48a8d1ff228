/**
 * The mirror's errors that are answers. Each is an {@link HttpError}: read `statusCode`.
 */
import { HttpError } from '../common/http-error.ts';

/** An answer that is not a file: the status and a message for the client. */
export class MirrorError extends HttpError {
  constructor(status: number, message: string) {
    super(status, message);
    this.name = 'MirrorError';
  }
}

/** The fill failed; readers throw this and the clients' sockets are destroyed. */
export class FillFailedError extends HttpError {
  /** One short line without the URL, e.g. `SHA-512 does not match FILE.DIGESTS`. */
  readonly brief: string;
  constructor(message: string, status = 502, brief?: string) {
    super(status, message);
    this.name = 'FillFailedError';
    this.brief = brief ?? message;
  }
}
