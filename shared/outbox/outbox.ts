import type { Kysely, Transaction } from 'kysely';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Database } from '../db/database.js';
import type { QueueFactory } from '../queue/queues.js';

export interface OutboxJob {
  queue: string;
  name: string;
  data: unknown;
  delayMs?: number;
}

/** The BullMQ jobId of an outbox row: re-relaying the same row never creates a second job. */
export const OUTBOX_JOB_PREFIX = 'outbox-';
export const outboxJobId = (id: string): string => `${OUTBOX_JOB_PREFIX}${id}`;

/** The outbox row of a job, for callers that fold the insert into a larger statement (same transaction). */
export const outboxRow = (j: OutboxJob) => ({ queue: j.queue, job_name: j.name, payload: JSON.stringify(j.data ?? null), delay_ms: j.delayMs ?? 0 });

/**
 * Writes jobs inside the caller's transaction: they exist exactly when the state change that
 * caused them commits.
 */
export async function enqueue(trx: Transaction<Database> | Kysely<Database>, jobs: OutboxJob | OutboxJob[]): Promise<string[]> {
  const list = Array.isArray(jobs) ? jobs : [jobs];
  if (list.length === 0) return [];
  const rows = await trx
    .insertInto('outbox')
    .values(list.map(outboxRow))
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Moves committed outbox rows to BullMQ. Rows are claimed with SKIP LOCKED so several relays can
 * run; a row is marked relayed in the same transaction that claimed it, after the job was added.
 * If the process dies in between, the row is claimed again and added again under the same jobId,
 * which BullMQ ignores: nothing lost, nothing doubled.
 */
export async function relayBatch(db: Kysely<Database>, queues: QueueFactory, limit = 500): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('outbox')
      .selectAll()
      .where('relayed_at', 'is', null)
      .orderBy('id')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    if (rows.length === 0) return 0;
    const byQueue = new Map<string, typeof rows>();
    for (const r of rows) byQueue.set(r.queue, [...(byQueue.get(r.queue) ?? []), r]);
    await Promise.all(
      [...byQueue].map(([name, list]) =>
        queues.queue(name).addBulk(
          list.map((r) => ({
            name: r.job_name,
            data: r.payload,
            opts: { jobId: outboxJobId(r.id), ...(r.delay_ms > 0 ? { delay: r.delay_ms } : {}) },
          })),
        ),
      ),
    );
    await trx
      .updateTable('outbox')
      .set({ relayed_at: sql<Date>`now()` as unknown as Date })
      .where('id', 'in', rows.map((r) => r.id))
      .execute();
    return rows.length;
  });
}

export interface OutboxRelay {
  /** Resolves once the loop has stopped and no batch is in flight. */
  stop(): Promise<void>;
  /** Relays everything pending now; for tests and shutdown. */
  drain(): Promise<void>;
  /** Resolves true once NOTIFY wakes the relay (LISTEN in place), false if it could not listen (the poll still runs). */
  readonly listening: Promise<boolean>;
}

export function startOutboxRelay(opts: {
  db: Kysely<Database>;
  pool: pg.Pool;
  queues: QueueFactory;
  logger: { warn(obj: unknown, msg?: string): void };
  pollMs: number;
}): OutboxRelay {
  let stopped = false;
  let wake: (() => void) | undefined;
  // A NOTIFY that comes while a batch is being relayed is kept, not lost: the loop then goes
  // round again at once instead of sleeping until the next poll.
  let notified = false;
  let listener: pg.PoolClient | undefined;

  const drain = async () => {
    while ((await relayBatch(opts.db, opts.queues)) > 0) {
      /* keep going while there is backlog */
    }
  };

  // NOTIFY wakes the relay at once; the poll covers a lost listener connection.
  const listening = opts.pool
    .connect()
    .then(async (client) => {
      if (stopped) {
        client.release();
        return false;
      }
      listener = client;
      client.on('notification', () => {
        if (wake) wake();
        else notified = true;
      });
      client.on('error', () => undefined);
      await client.query('listen postbud_outbox');
      return true;
    })
    .catch(() => false);

  const loop = (async () => {
    while (!stopped) {
      try {
        await drain();
      } catch (err) {
        opts.logger.warn({ err }, 'outbox relay failed; retrying');
      }
      if (stopped) break;
      if (notified) {
        notified = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  })();

  return {
    drain,
    listening,
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      if (listener) {
        await listener.query('unlisten postbud_outbox').catch(() => undefined);
        listener.release();
      }
    },
  };
}
