import path from 'node:path';
import type { Config } from '../../shared/config/config.js';
import { connectDb } from '../../shared/db/connect.js';
import { migrateToLatest } from '../../shared/db/migrate.js';
import { createLogger } from '../../shared/logging/logger.js';
import { startEmbeddedPostgres } from '../../shared/runtime/embedded-postgres.js';
import { closeOnSignals, startService, type RunningService } from '../../shared/runtime/run-service.js';
import { trustedIssuers } from '../../shared/runtime/service-deps.js';
import { SERVICES } from '../services.js';

/**
 * `postbud start`: the whole system in one process. Without DATABASE_URL it runs an embedded
 * Postgres under DATA_DIR/pg; without REDIS_URL BullMQ uses its PostgreSQL backend.
 */
export async function start(config: Config): Promise<void> {
  const log = createLogger('postbud', config.LOG_LEVEL);
  const stoppers: (() => Promise<void>)[] = [];
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    const pg = await startEmbeddedPostgres({ dataDir: path.join(config.DATA_DIR, 'pg'), port: config.EMBEDDED_PG_PORT });
    databaseUrl = pg.url;
    stoppers.push(() => pg.stop());
    log.info({ port: config.EMBEDDED_PG_PORT }, 'embedded Postgres started');
  }
  const cfg: Config = { ...config, DATABASE_URL: databaseUrl };
  const db = connectDb(databaseUrl, { poolSize: 1 });
  const applied = await migrateToLatest(db.kysely);
  await db.close();
  if (applied.length > 0) log.info({ applied }, 'migrations applied');
  await trustedIssuers(cfg);

  const running: RunningService[] = [];
  try {
    for (const mod of SERVICES) running.push(await startService(mod, cfg));
  } catch (err) {
    for (const r of running) await r.stop();
    for (const stop of stoppers) await stop();
    throw err;
  }
  // Services stop first, the database they use last.
  stoppers.unshift(...running.map((r) => () => r.stop()));
  closeOnSignals(cfg, log, stoppers);

  const lines = [
    '',
    'postbud is running:',
    ...running.map((r) => `  ${r.name.padEnd(13)} ${r.url}   (API docs: ${r.url}/docs)`),
    `  database      ${config.DATABASE_URL ? 'DATABASE_URL' : `embedded Postgres on port ${config.EMBEDDED_PG_PORT} (data in ${path.join(config.DATA_DIR, 'pg')})`}`,
    `  queues        ${cfg.REDIS_URL ? 'Redis (REDIS_URL)' : 'BullMQ on its PostgreSQL backend'}`,
    '',
    'Get a token from the development issuer, e.g.:',
    '  npx postbud token --org 991825827 --scope "postbud:send postbud:lookup"',
    '  npx postbud token --pid <personId> --acr idporten-loa-substantial',
    '',
    'Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}
