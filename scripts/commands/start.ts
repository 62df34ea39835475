import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { Config } from '../../shared/config/config.js';
import type { Database } from '../../shared/db/database.js';
import { connectDb } from '../../shared/db/connect.js';
import { migrateToLatest } from '../../shared/db/migrate.js';
import { createLogger } from '../../shared/logging/logger.js';
import { startEmbeddedPostgres } from '../../shared/runtime/embedded-postgres.js';
import { closeOnSignals, startService, type RunningService } from '../../shared/runtime/run-service.js';
import { trustedIssuers } from '../../shared/runtime/service-deps.js';
import { projectRoot } from '../../shared/runtime/project-root.js';
import { SERVICES } from '../services.js';
import { EXAMPLE_PDF, firstHourCommands } from './first-hour.js';
import { defaultSendersFile, seedRegistry } from './seed.js';

/**
 * Development only: a registry with no sender and no person is seeded (`postbud seed`), so the
 * first hour works without a second command. A registry with any data, and any other NODE_ENV,
 * is left alone.
 */
export async function seedIfEmpty(db: Kysely<Database>, config: Config, log: (line: string) => void): Promise<boolean> {
  if (config.NODE_ENV !== 'development') return false;
  const { rows } = await sql<{ used: boolean }>`select exists (select 1 from senders) or exists (select 1 from persons) as used`.execute(db);
  if (rows[0]?.used) return false;
  log('The registry is empty: seeding development data (postbud seed: agencies, providers with development certificates, 1000 synthetic persons)...');
  await seedRegistry(db, { sendersFile: defaultSendersFile(), persons: 1000, dataDir: config.DATA_DIR });
  return true;
}

/** The banner's first-hour lines: what is seeded, where it is listed, and commands that work as printed. */
export function firstHourBanner(config: Config, ingestionUrl: string): string[] {
  const examplesFile = path.resolve(config.DATA_DIR, 'seed-persons.json');
  if (!existsSync(examplesFile)) {
    return ['The registry has no development data. Load it with: npx postbud seed', ''];
  }
  const examples = JSON.parse(readFileSync(examplesFile, 'utf8')) as { senders?: { orgnr: string; name: string }[]; mailbox?: string[] };
  const sender = examples.senders?.[0];
  const person = examples.mailbox?.[0];
  if (!sender || !person) return [`Seeded examples are listed in ${examplesFile}.`, ''];
  return [
    `Seeded development data (examples listed in ${examplesFile}):`,
    `  sender ${sender.orgnr} (${sender.name}), person ${person} (has a digital mailbox)`,
    '',
    'Send a first letter (copy and paste):',
    ...firstHourCommands({ ingestionUrl, sender: sender.orgnr, personId: person, pdf: path.join(projectRoot(), EXAMPLE_PDF) }).map((l) => `  ${l}`),
    '',
    'The whole flow as every party sees it: npm run demo',
    '',
  ];
}

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
  const db = connectDb(databaseUrl, { poolSize: 2 });
  try {
    const applied = await migrateToLatest(db.kysely);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    await seedIfEmpty(db.kysely, cfg, (line) => process.stdout.write(`${line}\n`));
  } finally {
    await db.close();
  }
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
    ...firstHourBanner(cfg, running.find((r) => r.name === 'ingestion')!.url),
    'Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}
