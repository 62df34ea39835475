import type { FastifyInstance } from 'fastify';

/**
 * A request answered before its body was read to the end (a letter refused after its first bytes:
 * wrong magic bytes, a schema error, a reserved recipient, no token, over the size limit) leaves
 * the rest of the body in the connection. Node discards it only when nobody had started to read
 * the body; once a parser had (multipart, a stream into storage), the connection stays stuck
 * behind the unread bytes and a keep-alive client's next request gets no answer at all. Reading
 * megabytes we already refused to throw them away would cost the bandwidth the early refusal saved
 * (and Node's parser, paused behind the unread body, cannot be resumed from outside), so such an
 * answer carries `Connection: close`: the client gets it, and opens a new connection for the next
 * request. Node closes the socket once the answer is out.
 */
export function installUnreadBodyHandling(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('connection', 'close');
  });
}
