/**
 * The pull cycle's floor (bench/storage.ts): bare Fastify routes doing only what no
 * authenticated, tenant-checked provider pull from Postgres can skip, in the shape the cycle's
 * workers call, so the same client loads it at the same concurrency:
 *  - every request: the bearer token verified by the verifier the service uses
 *    (shared/auth/verifier.ts, jose, with its cache of verified tokens), the provider scope;
 *  - GET /v1/deliveries?limit=: one statement leasing the provider's next ready rows
 *    (SKIP LOCKED) and returning their ids, sizes and fingerprints;
 *  - GET /v1/deliveries/:id/package: one statement reading the row's bytes by id and
 *    provider, refusing a suspended provider in the same statement, the bytes sent as they are;
 *  - POST /v1/deliveries/ack {ids}: one statement marking the page's rows delivered, tenant
 *    filtered, and an answer per id.
 * The rows live in its own table (bench_pull_floor), each holding the CMS bytes the service
 * sends (as if the envelope had been made at intake). No envelopes, evidence events, receipts,
 * alert jobs, audit, OpenAPI validation, rate limits or metrics. Its own process; prints its URL.
 *
 * What it answers: how much of the gap between the plain route and the service's pull cycle
 * any implementation pays (token, one query per call, Postgres sending 10 KB per package, rows
 * written at lease and ack), so the rest is postbud's own.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { createTokenVerifier } from '../../shared/auth/verifier.js';
import { ensureDevIssuer } from '../../shared/auth/dev-issuer.js';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL!, max: 20 });
pool.on('error', () => undefined);
const verifier = createTokenVerifier({
  issuers: [await ensureDevIssuer(process.env.DATA_DIR!)],
  audience: 'postbud',
  clockToleranceS: 30,
  maxLifetimeS: Number(process.env.AUTH_MAX_TOKEN_LIFETIME_S ?? 300),
});
const leaseSeconds = 300;

class HttpError extends Error {
  constructor(readonly status: number) {
    super(String(status));
  }
}

async function providerOf(header: string | undefined): Promise<string> {
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!m) throw new HttpError(401);
  const p = await verifier.verify(m[1]!).catch(() => {
    throw new HttpError(401);
  });
  if (p.kind !== 'client' || !p.scopes.has('postbud:provider')) throw new HttpError(403);
  return p.org;
}

const app = Fastify();
app.setErrorHandler((err, _req, reply) => void reply.code(err instanceof HttpError ? err.status : 500).send({ error: err instanceof Error ? err.message : 'error' }));

app.get('/v1/deliveries', async (req) => {
  const org = await providerOf(req.headers.authorization);
  const limit = Math.min(500, Number((req.query as { limit?: string }).limit ?? 100));
  const { rows } = await pool.query<{ id: string; size: number; fingerprint: string }>({
    name: 'floor-list',
    text: `update bench_pull_floor f set leased_until = now() + make_interval(secs => $3)
             where f.id in (select id from bench_pull_floor
                             where provider_orgnr = $1 and state = 'READY' and (leased_until is null or leased_until <= now())
                             order by created_at, id limit $2 for update skip locked)
         returning f.id, octet_length(f.body) as size, encode(f.fingerprint, 'hex') as fingerprint`,
    values: [org, limit, leaseSeconds],
  });
  return { leaseSeconds, deliveries: rows };
});

app.get('/v1/deliveries/:id/package', async (req, reply) => {
  const org = await providerOf(req.headers.authorization);
  const { rows } = await pool.query<{ body: Buffer }>({
    name: 'floor-download',
    text: `select f.body from bench_pull_floor f
            where f.id = $1 and f.provider_orgnr = $2
              and not exists (select 1 from providers pr where pr.orgnr = $2 and pr.status = 'suspended')`,
    values: [(req.params as { id: string }).id, org],
  });
  if (!rows[0]) throw new HttpError(404);
  return reply.type('application/pkcs7-mime').send(rows[0].body);
});

app.post('/v1/deliveries/ack', async (req) => {
  const org = await providerOf(req.headers.authorization);
  const { ids } = req.body as { ids: string[] };
  const { rows } = await pool.query<{ id: string }>({
    name: 'floor-ack',
    text: `update bench_pull_floor set state = 'DELIVERED', leased_until = null, acked_at = now()
            where id = any($1::uuid[]) and provider_orgnr = $2 and state in ('READY', 'DELIVERED')
        returning id`,
    values: [ids, org],
  });
  const done = new Set(rows.map((r) => r.id));
  return { results: ids.map((id) => ({ id, ok: done.has(id) })) };
});

const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${url}\n`);
process.on('SIGTERM', () => void app.close().then(() => pool.end()).then(() => process.exit(0)));
