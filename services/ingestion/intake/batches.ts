import { Counter, Histogram, type Registry } from 'prom-client';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { Group } from '../../../shared/batch/group.js';
import { runPrepared } from '../../../shared/db/prepared.js';
import type { Kysely } from 'kysely';
import { commitLetters, type CommitOutcome, type SealedLetter } from './commit.js';
import { lookupSql, type LookupItem, type LookupRow } from './lookup.js';
import { Admission } from './admission.js';
import { UploadSlots } from './uploads.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The ingestion service's intake batches (absent on other services). */
    intake?: IntakeBatches;
  }
}

/**
 * The intake's shared machinery, one per ingestion app: the batched lookup (before a letter's
 * documents are read), the group commit (after they are sealed), and the upload bounds.
 */
export interface IntakeBatches {
  lookup: Group<LookupItem, LookupRow>;
  commit: Group<SealedLetter, CommitOutcome>;
  slots: UploadSlots;
  /** Latency-aware shedding (INTAKE_TARGET_LATENCY_MS): refuses new letters while a queue stands. */
  admission: Admission;
  /** Counts a letter refused by load shedding (`reason`: uploads, queue, pressure) or the per-client bound (client). */
  shed(reason: 'uploads' | 'queue' | 'client' | 'pressure' | 'latency'): void;
  /** Every batch size seen since start, for the bench (sizes -> count). */
  readonly batchSizes: Map<number, number>;
}

export function createIntakeBatches(deps: ServiceDeps, metrics?: Registry): IntakeBatches {
  const config = deps.config;
  const kysely = deps.db.kysely as unknown as Kysely<never>;
  const pool = deps.db.pool;
  const batchSizes = new Map<number, number>();
  const sizes = new Histogram({
    name: 'ingestion_intake_batch_letters',
    help: 'Letters per intake commit (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: metrics ? [metrics] : [],
  });
  const shedCounter = new Counter({
    name: 'ingestion_intake_shed_total',
    help: 'Letters refused before being read because the intake was at capacity (uploads, queue), a queue stood above the latency target (latency), the process was too busy (pressure: event-loop delay) or the client had too many uploads (client)',
    labelNames: ['reason'],
    registers: metrics ? [metrics] : [],
  });
  const lookup = new Group<LookupItem, LookupRow>((items) => runPrepared(pool, kysely, lookupSql(items, false)), {
    max: config.INTAKE_BATCH_MAX,
    parallel: config.INTAKE_BATCH_PARALLEL,
  });
  const now = () => deps.clock?.() ?? new Date();
  const commit = new Group<SealedLetter, CommitOutcome>(
    (letters) => commitLetters({ kysely, pool, ttlHours: config.IDEMPOTENCY_TTL_HOURS, expirySeconds: config.DELIVERY_EXPIRY_SECONDS, now }, letters),
    {
      max: config.INTAKE_BATCH_MAX,
      parallel: config.INTAKE_BATCH_PARALLEL,
      windowMs: config.INTAKE_BATCH_WINDOW_MS,
      maxQueued: config.INTAKE_QUEUE_MAX,
      onBatch: (n) => {
        sizes.observe(n);
        batchSizes.set(n, (batchSizes.get(n) ?? 0) + 1);
      },
    },
  );
  return {
    lookup,
    commit,
    slots: new UploadSlots(config.INTAKE_UPLOADS_MAX, config.INTAKE_UPLOADS_PER_CLIENT),
    admission: new Admission({
      targetMs: config.INTAKE_TARGET_LATENCY_MS,
      intervalMs: config.INTAKE_LATENCY_INTERVAL_MS,
      maxBusy: config.INTAKE_MAX_BUSY_PERCENT / 100,
      minLimit: 32,
      maxLimit: config.INTAKE_UPLOADS_MAX,
    }),
    shed: (reason) => shedCounter.inc({ reason }),
    batchSizes,
  };
}
