import type { Config } from '../config/config.js';
import type { Db } from '../db/connect.js';
import type { Logger } from '../logging/logger.js';
import type { QueueFactory } from '../queue/queues.js';
import type { TokenVerifier } from '../auth/verifier.js';

/** What every service's buildApp receives: built once by main (or a test), closed by its owner. */
export interface ServiceDeps {
  config: Config;
  db: Db;
  queues: QueueFactory;
  verifier: TokenVerifier;
  /** Defaults to a pino logger for the service at config.LOG_LEVEL. */
  logger?: Logger;
  /** Now, for code that schedules by the clock; tests pass a controllable one. */
  clock?: () => Date;
}
