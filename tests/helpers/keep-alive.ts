import http from 'node:http';
import type { Socket } from 'node:net';

export interface KeepAliveAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Which connection carried it: the same number means the same socket. */
  socket: number;
  /** Body bytes the client had handed over when the answer began: less than the body means refused early. */
  sentWhenAnswered: number;
}

/**
 * A real HTTP/1.1 client over one keep-alive connection at a time (node:http Agent, maxSockets 1),
 * as agencies' clients are: it tells whether a server that refused a request early still answers
 * the next one on the connection, which app.inject cannot. A request that gets no answer within
 * `timeoutMs` fails instead of hanging the test.
 */
export function keepAliveClient(base: string, timeoutMs = 15_000) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ids = new WeakMap<Socket, number>();
  let next = 0;
  const request = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<KeepAliveAnswer> =>
    new Promise((resolve, reject) => {
      const req = http.request(new URL(path, base), { method, agent, headers: body ? { ...headers, 'content-length': String(body.length) } : headers });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('socket', (s: Socket) => {
        if (!ids.has(s)) ids.set(s, ++next);
      });
      let answer: KeepAliveAnswer | undefined;
      let at = 0;
      req.on('response', (res) => {
        const sentWhenAnswered = at;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          clearTimeout(timer);
          answer = { status: res.statusCode ?? 0, headers: res.headers, body: text, socket: ids.get(req.socket!) ?? 0, sentWhenAnswered };
          resolve(answer);
        });
      });
      // Writing the rest of a body the server refused fails (EPIPE, reset) once it closed the
      // connection after its answer: that answer is what counts.
      req.on('error', (err) => {
        if (answer) return;
        clearTimeout(timer);
        reject(err);
      });
      // The body goes out in pieces, as a client streaming a file does, not in one write.
      if (body) {
        const pump = () => {
          while (at < body.length && !req.destroyed) {
            const chunk = body.subarray(at, at + 64 * 1024);
            at += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      } else req.end();
    });
  return { request, close: () => agent.destroy() };
}
