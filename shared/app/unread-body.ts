import type { IncomingMessage } from 'node:http';
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
    if (request.raw.complete || untouchedAndSmall(request.raw)) return;
    reply.header('connection', 'close');
  });
}

/** Node discards at most this much of a body nobody read, and the connection stays open. */
const DISCARD_MAX_BYTES = 1024 * 1024;

/**
 * A body nobody started to read (a letter refused by load shedding or a 401 before its first
 * byte was looked at) is discarded by Node itself once the answer is out, and the connection
 * stays usable. Closing it instead makes a shed client reconnect for its retry, which at three
 * times capacity costs more than the letters taken (bench/intake.ts). Only for a declared size
 * up to DISCARD_MAX_BYTES: more is bandwidth spent on bytes already refused.
 */
function untouchedAndSmall(raw: IncomingMessage): boolean {
  if (raw.readableFlowing !== null || raw.readableDidRead) return false;
  const length = Number(raw.headers['content-length']);
  return Number.isFinite(length) && length <= DISCARD_MAX_BYTES;
}
