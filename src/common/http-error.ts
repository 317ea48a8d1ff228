/**
 * An error that is an answer: an HTTP status and a message for the client. The error handler
 * (src/http/errors.ts) sends both; core modules throw it without knowing about Fastify.
 */
export class HttpError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HttpError';
    this.statusCode = statusCode;
  }
}
