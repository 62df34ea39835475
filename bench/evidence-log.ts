/**
 * Evidence log: what the Merkle log costs intake. The ingestion service in its own process takes
 * 10 KB letters at its maximum rate, once with the storage service's sequencer idle
 * (EVIDENCE_HEAD_SECONDS=3600, so events wait unsequenced) and once with it taking every new
 * event each second and signing a head (EVIDENCE_HEAD_SECONDS=1, ten times the default rate).
 * Runs alternate without/with, `BENCH_ROUNDS` times (default 2), so drift on a shared machine
 * hits both. Also reports how far the log trails: events not yet sequenced at the end of a run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { loadConfig } from '../shared/config/config.js';
import { appendEvents } from '../shared/evidence/events.js';
import { sequenceAll } from '../shared/evidence/log.js';
import { storageContext } from '../shared/storage/context.js';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { SCOPES } from '../shared/auth/scopes.js';
import { connectDb } from '../shared/db/connect.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { projectRoot } from '../shared/runtime/project-root.js';
import { freePort } from '../tests/harness/free-port.js';
import { seedRegistry, SENDER } from '../tests/services/ingestion/fixtures.js';
import { CONTENT_TYPE, LETTER_10KB } from './lib/letter-body.js';
import { load } from './lib/load.js';
import { benchDatabase } from './lib/postgres.js';
import { report, type Row } from './lib/report.js';


async function startProcess(name: 'ingestion' | 'storage', env: Record<string, string>): Promise<{ child: ChildProcess; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const root = projectRoot();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, `services/${name}/main.ts`)], {
    cwd: root,
    env: { ...process.env, ...env, [`${name.toUpperCase()}_PORT`]: String(port), LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '10000000' },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (await fetch(`${url}/health/ready`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error(`${name} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const pg = await benchDatabase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-evidence-'));
  try {
    const db = connectDb(pg.url, { poolSize: 2 });
    await migrateToLatest(db.kysely);
    await seedRegistry(db.kysely); // idempotent: a reused BENCH_DATABASE_URL or a dev-seeded registry keeps its rows
    // The sequencer's own rate, alone: events appended beforehand, then made leaves and signed.
    const SEQ_EVENTS = 20_000;
    const hub = storageContext({ config: loadConfig({ NODE_ENV: 'development', DATABASE_URL: pg.url, DATA_DIR: dataDir, LOG_LEVEL: 'warn' }), db }).hub;
    for (let i = 0; i < SEQ_EVENTS; i += 500) {
      await appendEvents(db.kysely, hub, Array.from({ length: 500 }, () => ({ messageId: randomUUID(), senderOrgnr: SENDER, type: 'SEALED', data: { documents: [] } })));
    }
    const t0 = performance.now();
    await sequenceAll(db.kysely, hub);
    const sequencerRate = SEQ_EVENTS / ((performance.now() - t0) / 1000);
    const env = { DATABASE_URL: pg.url, DATA_DIR: dataDir, QUEUE_PREFIX: 'bench_evidence', DATABASE_POOL_SIZE: '20', AUTH_MAX_TOKEN_LIFETIME_S: '3600' };
    const token = await issueDevToken(dataDir, { org: SENDER, scope: SCOPES.send, audience: 'postbud', ttlSeconds: 3600 });
    const ingestion = await startProcess('ingestion', env);
    const intake = (d = durationS) =>
      load({ url: `${ingestion.url}/v1/messages`, method: 'POST', body: LETTER_10KB, headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPE, 'idempotency-key': '[<id>]' }, durationS: d, idReplacement: true });
    const unsequenced = async () => Number((await sql<{ n: string }>`select count(*) as n from message_events where leaf_index is null`.execute(db.kysely)).rows[0]!.n);
    const rows: Row[] = [];
    const totals = { without: 0, with: 0 };

    try {
      await intake(3); // warm-up
      for (let round = 1; round <= rounds; round++) {
        for (const mode of ['without', 'with'] as const) {
          // The storage service runs in both; only how often its sequencer works differs.
          const storage = await startProcess('storage', { ...env, EVIDENCE_HEAD_SECONDS: mode === 'with' ? '1' : '3600' });
          try {
            if (mode === 'with') {
              // Start from a caught-up log, so the run measures steady state, not the backlog.
              for (let i = 0; (await unsequenced()) > 0 && i < 1200; i++) await new Promise((r) => setTimeout(r, 50));
            }
            const r = await intake();
            totals[mode] += r.requestsPerSec;
            rows.push({ scenario: `round ${round}: intake, sequencer ${mode === 'with' ? 'every 1 s' : 'idle'}`, 'req/s': Math.round(r.requestsPerSec), 'p50 ms': r.p50Ms, 'p99 ms': r.p99Ms, errors: r.errors + r.non2xx, 'unsequenced at end': mode === 'with' ? await unsequenced() : '-' });
          } finally {
            await storage.stop();
          }
        }
      }
    } finally {
      await ingestion.stop();
    }
    const cost = 1 - totals.with / totals.without;
    rows.push({ scenario: 'log cost (1 - with/without, all rounds)', 'req/s': `${(cost * 100).toFixed(1)} %` });
    rows.push({ scenario: `sequencer alone: ${SEQ_EVENTS} events -> leaves + head, events/s`, 'req/s': Math.round(sequencerRate) });
    const heads = Number((await sql<{ n: string }>`select count(*) as n from evidence_heads`.execute(db.kysely)).rows[0]!.n);
    await db.close();
    report('evidence-log', rows, { durationS, rounds, headsSigned: heads, targets: { maxCostPercent: 5 } });
  } finally {
    await pg.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
