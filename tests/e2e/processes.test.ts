import { chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createTokenVerifier } from '../../shared/auth/verifier.js';
import { ensureDevIssuer } from '../../shared/auth/dev-issuer.js';
import { freePort } from '../harness/free-port.js';
import { testDatabase } from '../helpers/database.js';
import { runTs, servicePorts, waitForHttp } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';

t.test('a service runs alone as a process, becomes ready and stops cleanly on SIGTERM', async (t) => {
  const { url } = await testDatabase(t);
  const port = await freePort();
  const dataDir = testDataDir(t);
  const p = runTs(t, 'services/ingestion/main.ts', [], { DATABASE_URL: url, INGESTION_PORT: String(port), DATA_DIR: dataDir, QUEUE_PREFIX: 'e2e_alone' });
  const ready = await waitForHttp(`http://127.0.0.1:${port}/health/ready`);
  t.equal(((await ready.json()) as { status: string }).status, 'ready');
  p.child.kill('SIGTERM');
  const { code } = await p.exited;
  t.equal(code, 0, 'graceful exit');
  t.match(p.output(), /stopping on SIGTERM/);
});

t.test('a wrong setting stops start-up with a message naming the variable', async (t) => {
  const p = runTs(t, 'services/registry/main.ts', [], { DATABASE_URL: 'postgres://x@127.0.0.1/x', REGISTRY_PORT: 'eighty' });
  const { code } = await p.exited;
  t.equal(code, 78);
  t.match(p.output(), /REGISTRY_PORT: must be an integer/);
});

t.test('postbud start runs the four services; the CLI token is accepted; Ctrl-C stops all', async (t) => {
  const { url } = await testDatabase(t);
  const dataDir = testDataDir(t);
  const { ports, env: portEnv } = await servicePorts();
  const env = { DATABASE_URL: url, DATA_DIR: dataDir, QUEUE_PREFIX: 'e2e_start', ...portEnv };
  const p = runTs(t, 'scripts/cli.ts', ['start'], env);
  for (const port of ports) {
    const res = await waitForHttp(`http://127.0.0.1:${port}/health/ready`, 60_000);
    t.equal(res.status, 200, `service on ${port} is ready`);
  }
  t.match(p.output(), /postbud is running/);
  t.match(p.output(), /postbud token --org/);

  const tok = runTs(t, 'scripts/cli.ts', ['token', '--org', '991825827', '--scope', 'postbud:send'], { DATA_DIR: dataDir });
  t.equal((await tok.exited).code, 0);
  const token = tok.output().trim();
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'only the token is printed');
  const verifier = createTokenVerifier({ issuers: [await ensureDevIssuer(dataDir)], audience: 'postbud', clockToleranceS: 0 });
  const principal = await verifier.verify(token);
  t.same({ kind: principal.kind, org: principal.kind === 'client' ? principal.org : '' }, { kind: 'client', org: '991825827' });

  const citizen = runTs(t, 'scripts/cli.ts', ['token', '--pid', '01017012345', '--acr', 'idporten-loa-high'], { DATA_DIR: dataDir });
  t.equal((await citizen.exited).code, 0);
  t.match(await verifier.verify(citizen.output().trim()), { kind: 'citizen', pid: '01017012345', acr: 'idporten-loa-high' });

  const bad = runTs(t, 'scripts/cli.ts', ['token', '--org', '12'], { DATA_DIR: dataDir });
  t.equal((await bad.exited).code, 64);
  t.match(bad.output(), /9-digit/);

  p.child.kill('SIGINT');
  t.equal((await p.exited).code, 0, 'a graceful stop, not a crash');
  t.match(p.output(), /stopping on SIGINT/);
  t.notMatch(p.output(), /"level":(40|50|60)/, 'no warning or error logged while stopping (the database outlives the services)');
  for (const port of ports) await t.rejects(fetch(`http://127.0.0.1:${port}/health/live`), `port ${port} closed`);
});

t.test('npm start with nothing configured: embedded Postgres, and a terminal Ctrl-C to the whole process group stops it all cleanly', async (t) => {
  const dataDir = testDataDir(t);
  chmodSync(dataDir, 0o755);
  const pgPort = await freePort();
  const { ports, env: portEnv } = await servicePorts();
  const env = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), ...portEnv };
  // Empty means unset: nothing configured but where to keep data and which ports to use.
  const p = runTs(t, 'scripts/cli.ts', ['start'], { ...env, DATABASE_URL: '', REDIS_URL: '' }, { detached: true });
  for (const port of ports) t.equal((await waitForHttp(`http://127.0.0.1:${port}/health/ready`, 90_000)).status, 200);
  t.match(p.output(), new RegExp(`embedded Postgres on port ${pgPort}`));
  t.ok(existsSync(path.join(dataDir, 'pg', 'PG_VERSION')), 'the cluster lives under DATA_DIR');
  process.kill(-p.child.pid!, 'SIGINT');
  t.equal((await p.exited).code, 0);
  t.notMatch(p.output(), /"level":(40|50|60)/, 'no query was cut short while stopping');
  await t.rejects(fetch(`http://127.0.0.1:${ports[0]}/health/live`));
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  for (let i = 0; i < 100 && existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
  t.notOk(existsSync(pidFile), 'Postgres has shut down too');
});
