/** The request number's way through the mirror (bench/cache-tests-origin.ts), kept apart so that tests can load it without the origin's hooks. */
import type http from 'node:http';

/** Moves `param=N` from the request's query to its `req-num` header. */
export function takeNumber(request: Pick<http.IncomingMessage, 'url' | 'headers'>, name: string): void {
  const url = request.url ?? '';
  const q = url.indexOf('?');
  if (q < 0) return;
  const kept: string[] = [];
  for (const piece of url.slice(q + 1).split('&')) {
    const equals = piece.indexOf('=');
    const key = equals < 0 ? piece : piece.slice(0, equals);
    if (key !== name) kept.push(piece);
    else if (request.headers['req-num'] === undefined) request.headers['req-num'] = equals < 0 ? '' : piece.slice(equals + 1);
  }
  request.url = url.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : '');
}
