import type { ServiceDeps } from '../app/deps.js';
import { ensureDevIssuer } from '../auth/dev-issuer.js';
import { createTokenVerifier } from '../auth/verifier.js';
import type { Config } from '../config/config.js';
import { connectDb } from '../db/connect.js';
import { createLogger } from '../logging/logger.js';
import { createQueueFactory } from '../queue/queues.js';

/** Trusted issuers from config, or the development issuer when none are configured. */
export async function trustedIssuers(config: Config) {
  return config.AUTH_ISSUERS ?? [await ensureDevIssuer(config.DATA_DIR)];
}

/** Connections a service process owns; `close` releases all of them. */
export async function createServiceDeps(service: string, config: Config): Promise<ServiceDeps & { close(): Promise<void> }> {
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required to run a service on its own (npm start sets it for the embedded Postgres)');
  const db = connectDb(config.DATABASE_URL, {
    poolSize: config.DATABASE_POOL_SIZE,
    applicationName: `postbud-${service}`,
    connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
  });
  const queues = createQueueFactory({ redisUrl: config.REDIS_URL, databaseUrl: config.DATABASE_URL, prefix: config.QUEUE_PREFIX });
  const verifier = createTokenVerifier({
    issuers: await trustedIssuers(config),
    audience: config.AUTH_AUDIENCE,
    clockToleranceS: config.AUTH_CLOCK_TOLERANCE_S,
    maxLifetimeS: config.AUTH_MAX_TOKEN_LIFETIME_S,
  });
  return {
    config,
    db,
    queues,
    verifier,
    logger: createLogger(service, config.LOG_LEVEL),
    async close() {
      await queues.close();
      await db.close();
    },
  };
}
