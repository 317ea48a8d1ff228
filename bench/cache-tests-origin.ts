/**
 * Loaded with `--import` into the cache-tests suite's origin server (bench/cache-tests.ts starts
 * it), before the suite's own code:
 *
 * - a server given only a port (the suite's `server.listen(port)`) listens on 127.0.0.1, not on
 *   every interface;
 * - with CACHE_TESTS_NUMBER_PARAM set, a request whose query carries that parameter has it taken
 *   out of the URL and given to the suite as its `Req-Num` header (unless the request has one).
 *   bootdepot's mirror never passes a client's headers upstream, so the client puts the request
 *   number in the URL instead and the mirror leaves that parameter out of its cache key
 *   (`ignoreQueryParams`); the suite's origin then sees what it would see behind a cache that
 *   forwards `Req-Num`.
 */
import http from 'node:http';
import net from 'node:net';
import { takeNumber } from './cache-tests-number.ts';

type Method = (this: unknown, ...args: unknown[]) => unknown;

const listen = Reflect.get(net.Server.prototype, 'listen') as Method;
Reflect.set(net.Server.prototype, 'listen', function (this: net.Server, ...args: unknown[]) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^[0-9]+$/.test(first))) args.splice(1, 0, '127.0.0.1');
  return Reflect.apply(listen, this, args);
});

const param = process.env.CACHE_TESTS_NUMBER_PARAM;
if (param) {
  const emit = Reflect.get(http.Server.prototype, 'emit') as Method;
  Reflect.set(http.Server.prototype, 'emit', function (this: http.Server, ...args: unknown[]) {
    const request = args[1] as http.IncomingMessage | undefined;
    if (args[0] === 'request' && request?.url !== undefined) takeNumber(request, param);
    return Reflect.apply(emit, this, args);
  });
}
