import type { Config } from '../../shared/config/config.js';
import { connectDb } from '../../shared/db/connect.js';
import { migrateToLatest } from '../../shared/db/migrate.js';
import { createQueueFactory } from '../../shared/queue/queues.js';

/** `postbud migrate`: our schema, then BullMQ's when it runs on Postgres. Safe to run concurrently. */
export async function migrate(config: Config): Promise<void> {
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required for postbud migrate');
  const db = connectDb(config.DATABASE_URL, { poolSize: 1 });
  try {
    const applied = await migrateToLatest(db.kysely);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
  } finally {
    await db.close();
  }
  const queues = createQueueFactory({ redisUrl: config.REDIS_URL, databaseUrl: config.DATABASE_URL, prefix: config.QUEUE_PREFIX });
  try {
    await queues.ping();
  } finally {
    await queues.close();
  }
}
