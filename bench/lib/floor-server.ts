/**
 * The floor (bench/intake.ts): a bare Fastify route doing only the work no intake of a sealed
 * letter can skip, with postbud's own parts for it, then the baseline's one insert. Per letter:
 * the multipart body parsed (busboy), the message part parsed as JSON, the ASiC-E package
 * built (SHA-256, deflate, ZIP), its manifest signed (ES256), the package encrypted
 * (AES-256-CBC under a fresh key, the key wrapped under a KEK) and inserted as one row. No
 * authentication, idempotency, registry lookup, routing, evidence events, deliveries or
 * receipts. Its own process; prints its URL.
 *
 * What it answers: how far any implementation of the intake can get on this machine
 * next to the bare insert, so the gap between the floor and `POST /v1/messages` is postbud's
 * own (its hooks, checks, rows and batching), the gap between the baseline and the floor the
 * letter's.
 */
import { createCipheriv, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { Busboy } from '@fastify/busboy';
import Fastify from 'fastify';
import pg from 'pg';
import { buildPackageInMemory, type DocumentData } from '../../shared/crypto/asice.js';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL!, max: 10 });
pool.on('error', () => undefined);
await pool.query('create table if not exists bench_floor (id bigserial primary key, wrapped_key bytea not null, iv bytea not null, body bytea not null, created_at timestamptz not null default now())');
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const kek = randomBytes(32);

function parts(body: Buffer, headers: Record<string, string | string[] | undefined>): Promise<{ message: string; documents: DocumentData[] }> {
  return new Promise((resolve, reject) => {
    let message = '';
    const documents: DocumentData[] = [];
    const bb = new Busboy({ headers: headers as never, limits: { fields: 1, files: 11, parts: 13, fieldSize: 262144 } });
    bb.on('field', (_name: string, value: string) => (message = value));
    bb.on('file', (_name: string, stream: NodeJS.ReadableStream, filename: string, _enc: string, mime: string) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => documents.push({ name: filename, mime, data: Buffer.concat(chunks) }));
    });
    bb.on('finish', () => resolve({ message, documents }));
    bb.on('error', reject);
    bb.end(body);
  });
}

const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/floor', async (req, reply) => {
  const { message, documents } = await parts(req.body as Buffer, req.headers);
  const letter = JSON.parse(message) as { title: string; recipient: { personId: string } };
  const built = await buildPackageInMemory(
    { messageId: randomBytes(16).toString('hex'), sender: { orgnr: '974760673', name: 'bench' }, recipient: { personId: letter.recipient.personId }, title: letter.title, language: 'nb', securityLevel: 4, availableAt: new Date().toISOString(), openReceipt: false },
    documents,
    async (json) => sign('sha256', json, { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url'),
  );
  const dataKey = randomBytes(32);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', dataKey, iv);
  const data = Buffer.concat([cipher.update(built.zip), cipher.final()]);
  const kekIv = randomBytes(12);
  const wrap = createCipheriv('aes-256-gcm', kek, kekIv);
  const wrapped = Buffer.concat([kekIv, wrap.update(dataKey), wrap.final(), wrap.getAuthTag()]);
  const { rows } = await pool.query('insert into bench_floor (wrapped_key, iv, body) values ($1, $2, $3) returning id', [wrapped, iv, data]);
  return reply.code(201).send({ id: rows[0].id, documents: built.manifest.documents.length });
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${url}/floor\n`);
process.on('SIGTERM', () => void app.close().then(() => pool.end()).then(() => process.exit(0)));
