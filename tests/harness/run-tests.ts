/**
 * `npm test`: starts the real peers once per run (an embedded Postgres and a redis-server on free
 * ports, unless TEST_DATABASE_URL / TEST_REDIS_URL are given), migrates a template database that
 * each test file clones, then runs tap with the addresses in its environment.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { connectDb } from '../../shared/db/connect.js';
import { migrateToLatest } from '../../shared/db/migrate.js';
import { startEmbeddedPostgres } from '../../shared/runtime/embedded-postgres.js';
import { freePort } from './free-port.js';
import { hasRedisServer, startRedisServer } from './redis-server.js';

export const TEMPLATE_DB = 'postbud_test_template';

const stops: (() => Promise<void>)[] = [];
const cleanup = async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
};

async function main(): Promise<number> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'postbud-test-'));
  // As root, Postgres runs as the postgres user, which must be able to enter this folder.
  chmodSync(tmp, 0o755);
  stops.push(async () => rmSync(tmp, { recursive: true, force: true }));

  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg'), port: await freePort() });
    stops.push(() => embedded.stop());
    adminUrl = embedded.url;
  }

  let redisUrl = process.env.TEST_REDIS_URL;
  if (!redisUrl && hasRedisServer()) {
    const redis = await startRedisServer();
    stops.push(() => redis.stop());
    redisUrl = redis.url;
  }
  if (!redisUrl && process.env.CI === 'true') {
    throw new Error('CI=true but neither TEST_REDIS_URL nor redis-server is available: Redis-backed tests must run in CI');
  }

  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${TEMPLATE_DB}`);
  await admin.query(`create database ${TEMPLATE_DB}`);
  await admin.end();
  const templateUrl = new URL(adminUrl);
  templateUrl.pathname = `/${TEMPLATE_DB}`;
  const db = connectDb(templateUrl.toString(), { poolSize: 1 });
  await migrateToLatest(db.kysely);
  await db.close();

  const env = {
    ...process.env,
    TEST_DATABASE_URL: adminUrl,
    TEST_TEMPLATE_DB: TEMPLATE_DB,
    ...(redisUrl ? { TEST_REDIS_URL: redisUrl } : {}),
  };
  const tapBin = path.resolve('node_modules/.bin/tap');
  const child = spawn(tapBin, process.argv.slice(2), { stdio: 'inherit', env });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`test harness: ${err instanceof Error ? err.stack : String(err)}\n`);
} finally {
  await cleanup();
}
process.exit(code);
