/**
 * Postgres stopped under every service (issue 16.3 and 16.4): each API answers 503 `unavailable`
 * with Retry-After instead of 500, readiness answers at once (< 200 ms) from its background probe,
 * and the outage is logged once when it starts and once when it ends, with a count, never a
 * stack per request. The server is this test's own embedded Postgres, stopped and started again
 * on its data directory.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { service as ingestion } from '../../services/ingestion/app.js';
import { service as notification } from '../../services/notification/app.js';
import { service as registry } from '../../services/registry/app.js';
import { service as storage } from '../../services/storage/app.js';
import type { App } from '../../shared/app/create-app.js';
import { issueDevToken, type TokenRequest } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { connectDb } from '../../shared/db/connect.js';
import { migrateToLatest } from '../../shared/db/migrate.js';
import { createLogger } from '../../shared/logging/logger.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../shared/runtime/embedded-postgres.js';
import type { ServiceModule } from '../../shared/runtime/service-module.js';
import { freePort } from '../harness/free-port.js';
import { testDeps } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const ORG = '974760673';

/** One API call per service that needs the database, with a token that passes its guard. */
const CALLS: { mod: ServiceModule; url: string; token: TokenRequest }[] = [
  { mod: registry, url: '/v1/admin/senders', token: { org: ORG, scope: SCOPES.admin } as TokenRequest },
  { mod: ingestion, url: '/v1/receipts', token: { org: ORG, scope: SCOPES.send } as TokenRequest },
  { mod: storage, url: '/v1/deliveries', token: { org: ORG, scope: SCOPES.provider } as TokenRequest },
  { mod: notification, url: '/v1/admin/queues', token: { org: ORG, scope: SCOPES.admin } as TokenRequest },
];

interface Running {
  name: string;
  app: App;
  lines: Record<string, unknown>[];
  call(): Promise<{ statusCode: number; headers: Record<string, unknown>; json(): Record<string, unknown> }>;
}

t.test('Postgres stopped: every API answers 503 with Retry-After, readiness answers at once, the outage is logged once each way', { timeout: 120_000 }, async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'postbud-outage-'));
  chmodSync(tmp, 0o755);
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const pgDir = path.join(tmp, 'pg');
  const port = await freePort();
  let server: EmbeddedDatabase = await startEmbeddedPostgres({ dataDir: pgDir, port });
  t.teardown(() => server.stop());
  const setup = connectDb(server.url, { poolSize: 1 });
  await migrateToLatest(setup.kysely);
  await setup.close();

  const running: Running[] = [];
  for (const c of CALLS) {
    const deps = await testDeps(t, { databaseUrl: server.url, env: { HEALTH_PROBE_MS: '200' } });
    const lines: Record<string, unknown>[] = [];
    deps.logger = createLogger(c.mod.name, 'info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const app = await c.mod.buildApp(deps);
    t.teardown(() => app.close());
    await app.ready();
    const token = await issueDevToken(deps.dataDir, { ...c.token, audience: deps.config.AUTH_AUDIENCE } as TokenRequest);
    running.push({ name: c.mod.name, app, lines, call: () => app.inject({ method: 'GET', url: c.url, headers: { authorization: `Bearer ${token}` } }) as never });
  }

  for (const r of running) {
    await waitFor(`${r.name} to be ready`, async () => (await r.app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200);
    t.ok((await r.call()).statusCode < 500, `${r.name} answers while Postgres runs`);
  }

  await server.stop();

  for (const r of running) {
    await waitFor(`${r.name} to see the outage`, async () => (await r.app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 503);
    const started = performance.now();
    const ready = await r.app.inject({ method: 'GET', url: '/health/ready' });
    const ms = performance.now() - started;
    t.equal(ready.statusCode, 503);
    t.match(ready.json(), { status: 'not-ready', checks: { database: { ok: false, required: true } } });
    t.ok(ms < 200, `${r.name} readiness answered in ${ms.toFixed(1)} ms while Postgres is down`);
    for (let i = 0; i < 5; i++) {
      const res = await r.call();
      t.equal(res.statusCode, 503, `${r.name} API: 503, not 500`);
      t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
      t.equal(res.json().type, 'https://postbud.dev/problems/unavailable');
      t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After');
    }
    const metrics = await r.app.inject({ method: 'GET', url: '/metrics' });
    t.match(metrics.body, /health_dependency_up\{dependency="database",required="true"[^}]*\} 0/);
    t.match(metrics.body, /health_status\{status="not-ready"[^}]*\} 1/);
  }

  server = await startEmbeddedPostgres({ dataDir: pgDir, port });
  for (const r of running) {
    await waitFor(`${r.name} to be ready again`, async () => (await r.app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200, 60_000);
    t.ok((await r.call()).statusCode < 500, `${r.name} answers again`);
    const about = (dependency: string, msg: RegExp) => r.lines.filter((l) => l.dependency === dependency && msg.test(String(l.msg)));
    if (!t.equal(about('database', /unavailable/).length, 1, `${r.name} logged the start of the outage once`)) t.comment(JSON.stringify(r.lines.filter((l) => l.dependency)));
    const end = about('database', /available again/);
    t.equal(end.length, 1, `${r.name} logged its end once`);
    t.ok(Number(end[0]?.failedRequests) >= 5, `with the count of requests answered 503 (${String(end[0]?.failedRequests)})`);
    t.same(r.lines.filter((l) => Number(l.level) >= 50).map((l) => l.msg), [], `${r.name} logged no errors (no stack per request)`);
  }
});
