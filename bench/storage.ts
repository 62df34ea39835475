/**
 * Storage figures, each next to the floor it is compared with:
 *  - sealing MB/s (ZIP -> AES-256-CBC -> Postgres chunks) vs raw node:crypto AES-256-CBC over the same bytes;
 *  - provider pulls/s of a 10 KB and a 5 MB package (auth, lookups, CMS header + chunks from Postgres)
 *    vs a plain Fastify route serving the same CMS bytes from memory;
 *  - RSS growth while sealing a 50 MB document.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { sql } from 'kysely';
import forge from 'node-forge';
import { generateKeyPairSync } from 'node:crypto';
import { service } from '../services/storage/app.js';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { loadConfig } from '../shared/config/config.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { createServiceDeps } from '../shared/runtime/service-deps.js';
import { storageContext } from '../shared/storage/context.js';
import { createDelivery } from '../shared/storage/deliveries.js';
import { sealPackage } from '../shared/storage/packages.js';
import { benchDatabase } from './lib/postgres.js';
import { load } from './lib/load.js';
import { report, type Row } from './lib/report.js';

const MB = 1024 * 1024;
const PROVIDER = '984661185';
const SOURCE = randomBytes(MB); // incompressible, like the PDFs letters mostly are

function bytes(size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return this.push(null);
      const n = Math.min(64 * 1024, size - sent);
      this.push(SOURCE.subarray(sent % MB, (sent % MB) + n));
      sent += n;
    },
  });
}

function rawAesMBps(size: number): number {
  const c = createCipheriv('aes-256-cbc', randomBytes(32), randomBytes(16));
  const start = process.hrtime.bigint();
  for (let sent = 0; sent < size; sent += 64 * 1024) c.update(SOURCE.subarray(sent % MB, (sent % MB) + 64 * 1024));
  c.final();
  return size / MB / (Number(process.hrtime.bigint() - start) / 1e9);
}

function providerCertDer(): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000 * 365);
  cert.setSubject([{ name: 'commonName', value: 'bench' }]);
  cert.setIssuer([{ name: 'commonName', value: 'bench' }]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), forge.md.sha256.create());
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
}

const pg = await benchDatabase();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-data-'));
const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
try {
  const config = loadConfig({ DATABASE_URL: pg.url, DATA_DIR: dataDir, LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '10000000', AUTH_MAX_TOKEN_LIFETIME_S: '3600', NODE_ENV: 'test' });
  const deps = await createServiceDeps('storage', config);
  await migrateToLatest(deps.db.kysely);
  const ctx = storageContext(deps);
  const db = deps.db.kysely;
  await sql`insert into providers (orgnr, name, kind, certificate) values (${PROVIDER}, 'Bench', 'digital', ${providerCertDer()}) on conflict (orgnr) do nothing`.execute(db);

  const seal = (size: number) =>
    sealPackage(ctx, {
      manifest: {
        messageId: crypto.randomUUID(),
        sender: { orgnr: '974760673' },
        recipient: { personId: '01017012345' },
        title: 'Bench',
        language: 'nb',
        securityLevel: 4,
        availableAt: new Date().toISOString(),
        openReceipt: false,
      },
      documents: [{ name: 'letter.pdf', mime: 'application/pdf', stream: bytes(size) }],
    });
  await seal(10 * 1024); // warm-up: hub key, connections

  // RSS while sealing 50 MB (sampled every 10 ms).
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 10);
  const t0 = process.hrtime.bigint();
  await seal(50 * MB);
  const sealSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sampler);
  const sealMBps = 50 / sealSeconds;
  const aesMBps = rawAesMBps(50 * MB);
  const rssGrowthMb = (rssPeak - rssBefore) / MB;

  const app = await service.buildApp(deps);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = await issueDevToken(dataDir, { org: PROVIDER, scope: 'postbud:provider', audience: config.AUTH_AUDIENCE, ttlSeconds: 3600 });
  const headers = { authorization: `Bearer ${token}` };
  const rows: Row[] = [
    { scenario: 'seal 50 MB (zip+AES-CBC+pg chunks)', 'MB/s': sealMBps, ratio: sealMBps / aesMBps, compared: `raw AES-256-CBC ${aesMBps.toFixed(0)} MB/s` },
    { scenario: 'RSS growth sealing 50 MB', MB: rssGrowthMb },
  ];
  for (const [label, size] of [
    ['10 KB', 10 * 1024],
    ['5 MB', 5 * MB],
  ] as const) {
    const sealed = await seal(size);
    const { id } = await db.transaction().execute((trx) =>
      createDelivery(trx, ctx, {
        messageId: sealed.manifest.messageId,
        senderOrgnr: '974760673',
        personId: '01017012345',
        route: 'DIGITAL',
        providerOrgnr: PROVIDER,
        mailboxAddress: 'bench#1',
        title: 'Bench',
        securityLevel: 4,
        availableAt: new Date(),
        sealed,
      }),
    );
    const url = `${base}/v1/deliveries/${id}/package`;
    const body = Buffer.from(await (await fetch(url, { headers })).arrayBuffer());
    const pull = await load({ url, headers, durationS, connections: size > MB ? 8 : 32 });
    const plain = Fastify();
    plain.get('/p', async (_req, reply) => reply.type('application/pkcs7-mime').send(body));
    const plainUrl = await plain.listen({ host: '127.0.0.1', port: 0 });
    const ref = await load({ url: `${plainUrl}/p`, durationS, connections: size > MB ? 8 : 32 });
    await plain.close();
    rows.push({
      scenario: `pull ${label} package`,
      'req/s': pull.requestsPerSec,
      'p99 ms': pull.p99Ms,
      ratio: pull.requestsPerSec / ref.requestsPerSec,
      compared: `plain route ${ref.requestsPerSec.toFixed(0)} req/s`,
      errors: pull.errors + pull.non2xx,
    });
  }
  await app.close();
  report('storage', rows, { durationS, sealSeconds, aesMBps, rssBeforeMb: rssBefore / MB, rssPeakMb: rssPeak / MB });
  await deps.close();
} finally {
  await pg.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
