import { createApp, type App } from '../../shared/app/create-app.js';
import type { ServiceDeps } from '../../shared/app/deps.js';
import { createLogger } from '../../shared/logging/logger.js';
import type { Background, ServiceModule } from '../../shared/runtime/service-module.js';
import { storageContext } from '../../shared/storage/context.js';
import { EXPIRY_JOB, expireDelivery, INGESTION_QUEUE, startExpirySweep, type ExpiryJob } from './expiry.js';
import { deleteExpiredKeys } from './idempotency.js';
import { createIntakeBatches } from './intake/batches.js';
import { registerQueueMetrics } from '../../shared/app/queue-admin.js';
import routes from './routes/index.js';
import { startNextMovePusher } from './nextmove/subscriptions.js';
import { startPusher } from './webhooks.js';

export async function buildApp(deps: ServiceDeps): Promise<App> {
  const app = await createApp(
    {
      name: 'ingestion',
      description: 'Message intake for agencies: capabilities, letters, status and receipts',
      rules: [
        "The eFormidling next-move API under `/api/` (tag `next-move`) answers every error in next-move's error body (`application/json`, `NextMoveError`) " +
          'with the same problem `code`, as its clients parse it; each of its operations documents that shape for every error status.',
      ],
    },
    deps,
  );
  registerQueueMetrics(app.metrics, { service: 'ingestion', queues: deps.queues, names: [INGESTION_QUEUE] });
  const intake = createIntakeBatches(deps, app.metrics);
  // Tests and the bench reach the batches (pause, batch sizes) through the app.
  app.decorate('intake', intake);
  await app.register(routes, { deps, storage: storageContext(deps), intake });
  return app;
}

/**
 * Beside the API: the delivery expiry sweep (every EXPIRY_SWEEP_INTERVAL_MS, over
 * `deliveries.expires_at`), the expiry worker for `expire-delivery` jobs queued before the sweep
 * existed (nothing enqueues new ones), the receipt webhook pusher, the next-move status pusher,
 * and an hourly sweep of expired idempotency keys.
 */
export async function startBackground(deps: ServiceDeps): Promise<Background> {
  const log = deps.logger ?? createLogger('ingestion', deps.config.LOG_LEVEL);
  const storage = storageContext(deps);
  // Only jobs an installation queued before the sweep: an upgrade must not lose them.
  const worker = deps.queues.worker<ExpiryJob>(
    INGESTION_QUEUE,
    async (job) => {
      if (job.name !== EXPIRY_JOB) return 'ignored';
      return expireDelivery(deps.db, storage, job.data, deps.config.DELIVERY_EXPIRY_SECONDS);
    },
    { concurrency: 4 },
  );
  const expirySweep = startExpirySweep(deps.db, storage, {
    intervalMs: deps.config.EXPIRY_SWEEP_INTERVAL_MS,
    expirySeconds: deps.config.DELIVERY_EXPIRY_SECONDS,
    logger: log,
    clock: deps.clock,
  });
  const pushOptions = {
    allowPrivate: deps.config.WEBHOOK_ALLOW_PRIVATE,
    maxAttempts: deps.config.WEBHOOK_MAX_ATTEMPTS,
    retryBaseMs: deps.config.WEBHOOK_RETRY_BASE_MS,
    timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS,
    pollMs: deps.config.WEBHOOK_POLL_MS,
    logger: log,
  };
  const pusher = startPusher(deps.db.kysely, storage.hub, pushOptions);
  // next-move statuses folded from the evidence log and pushed to /api/subscriptions.
  const nextMovePusher = startNextMovePusher(deps.db.kysely, storage.hub, pushOptions);
  const sweep = async () => {
    try {
      await deleteExpiredKeys(deps.db.kysely);
    } catch (err) {
      log.warn({ err }, 'idempotency key sweep failed');
    }
  };
  void sweep();
  const timer = setInterval(() => void sweep(), 3_600_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([worker.close(), expirySweep.stop(), pusher.stop(), nextMovePusher.stop()]);
    },
  };
}

export const service: ServiceModule = { name: 'ingestion', buildApp, startBackground };
