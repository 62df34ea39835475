/**
 * A plain Fastify route serving fixed bytes from memory (GET /p), as its own process so that it
 * is measured like the service it is compared with (bench/storage.ts): the bytes come from the
 * file PLAIN_BODY_FILE, with PLAIN_CONTENT_TYPE. Prints its URL.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const body = readFileSync(process.env.PLAIN_BODY_FILE!);
const type = process.env.PLAIN_CONTENT_TYPE ?? 'application/octet-stream';
const app = Fastify();
app.get('/p', async (_req, reply) => reply.type(type).send(body));
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${url}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
