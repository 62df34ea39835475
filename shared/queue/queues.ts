import { Queue, Worker, withBackend, createPostgresBackend, type JobsOptions, type Processor, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';

export type QueueBackendKind = 'redis' | 'postgres';

export interface QueueFactoryOptions {
  /** When set, BullMQ runs on Redis; otherwise on its PostgreSQL backend in `databaseUrl`. */
  redisUrl?: string | undefined;
  databaseUrl: string;
  /** Redis key prefix, or the Postgres schema of the BullMQ backend. */
  prefix: string;
}

export type WorkerSettings = Omit<WorkerOptions, 'connection' | 'prefix'>;

/**
 * Jobs are kept a day after they finish so a re-relayed outbox id is recognised, not re-run. On
 * Redis a count caps the memory they take as well.
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * The PostgreSQL backend keeps finished jobs by age only: its count-based trim deletes `id not in
 * (the newest N)`, a scan of every kept job on each completion, which made each job slower the
 * more had finished (181 jobs/s with 20,000 kept, against 800/s with few). Its age-based trim is
 * an index range scan, and disk, not memory, holds the jobs.
 */
export const POSTGRES_JOB_OPTIONS: JobsOptions = {
  removeOnComplete: { age: 24 * 3600 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export interface QueueFactory {
  readonly kind: QueueBackendKind;
  readonly prefix: string;
  /** One Queue per name per factory, created on first use. */
  queue<T = unknown>(name: string): Queue<T>;
  worker<T = unknown, R = unknown>(name: string, processor: Processor<T, R>, settings?: WorkerSettings): Worker<T, R>;
  /** Throws when the backend cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * One place decides the backend. Callers get ordinary BullMQ Queue and Worker objects either way,
 * so the rest of the code never knows which backend it runs on.
 */
export function createQueueFactory(opts: QueueFactoryOptions): QueueFactory {
  const queues = new Map<string, Queue>();
  const workers: Worker[] = [];

  if (opts.redisUrl) {
    // BullMQ workers block on Redis, so they need retries without a per-request limit.
    const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    connection.on('error', () => undefined);
    return {
      kind: 'redis',
      prefix: opts.prefix,
      queue<T>(name: string) {
        let q = queues.get(name);
        if (!q) {
          q = new Queue(name, { connection, prefix: opts.prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS });
          q.on('error', () => undefined);
          queues.set(name, q);
        }
        return q as unknown as Queue<T>;
      },
      worker<T, R>(name: string, processor: Processor<T, R>, settings: WorkerSettings = {}) {
        const w = new Worker<T, R>(name, processor, { ...settings, connection, prefix: opts.prefix });
        w.on('error', () => undefined);
        workers.push(w as unknown as Worker);
        return w;
      },
      async ping() {
        if (connection.status === 'wait') await connection.connect();
        // While Redis is away ioredis queues commands for ever (maxRetriesPerRequest: null): say so
        // at once instead of adding one more command to the queue per probe.
        if (connection.status === 'reconnecting' || connection.status === 'close' || connection.status === 'end') throw new Error(`redis connection ${connection.status}`);
        const answer = await connection.ping();
        if (answer !== 'PONG') throw new Error('redis did not answer PONG');
      },
      async close() {
        await Promise.all(workers.map((w) => w.close()));
        await Promise.all([...queues.values()].map((q) => q.close()));
        connection.disconnect();
      },
    };
  }

  const pg = withBackend(createPostgresBackend);
  // BullMQ's own connections commit asynchronously (its processing is commit-bound: one WAL flush
  // per job otherwise). That is the durability of Redis with AOF everysec, and enough: a job state
  // lost in a Postgres crash is re-run and the row it acts on decides (outbox ids as jobIds, the
  // attempt claim); and a synchronous commit of ours flushes every earlier WAL record, so an outbox
  // row marked relayed never outlives the job it relayed.
  const connection = { connectionString: opts.databaseUrl, schema: opts.prefix, migrate: true, max: 4, options: '-c synchronous_commit=off' };
  return {
    kind: 'postgres',
    prefix: opts.prefix,
    queue<T>(name: string) {
      let q = queues.get(name);
      if (!q) {
        q = new pg.Queue(name, { connection, defaultJobOptions: POSTGRES_JOB_OPTIONS }) as unknown as Queue;
        q.on('error', () => undefined);
        queues.set(name, q);
      }
      return q as unknown as Queue<T>;
    },
    worker<T, R>(name: string, processor: Processor<T, R>, settings: WorkerSettings = {}) {
      const w = new pg.Worker<T, R>(name, processor as never, { ...settings, connection }) as unknown as Worker<T, R>;
      w.on('error', () => undefined);
      workers.push(w as unknown as Worker);
      return w;
    },
    async ping() {
      // Reaching the queue schema through a queue proves both the server and BullMQ's tables.
      await this.queue('health').getJobCounts('waiting');
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
