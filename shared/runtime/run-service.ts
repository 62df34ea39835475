import closeWithGrace from 'close-with-grace';
import type { App } from '../app/create-app.js';
import type { Config } from '../config/config.js';
import { migrateToLatest } from '../db/migrate.js';
import { startOutboxRelay } from '../outbox/outbox.js';
import { createServiceDeps } from './service-deps.js';
import type { Background, ServiceModule, ServiceName } from './service-module.js';

export const portOf = (config: Config, name: ServiceName): number =>
  ({ registry: config.REGISTRY_PORT, ingestion: config.INGESTION_PORT, storage: config.STORAGE_PORT, notification: config.NOTIFICATION_PORT })[name];

export interface RunningService {
  name: ServiceName;
  app: App;
  url: string;
  /** Stop accepting, finish in-flight requests and jobs, close pools. */
  stop(): Promise<void>;
}

/** Builds and starts one service: deps, migrations, its background work, the outbox relay, HTTP. */
export async function startService(mod: ServiceModule, config: Config): Promise<RunningService> {
  const deps = await createServiceDeps(mod.name, config);
  await migrateToLatest(deps.db.kysely);
  const app = await mod.buildApp(deps);
  const background: Background[] = [];
  if (mod.startBackground) background.push(await mod.startBackground(deps));
  background.push(startOutboxRelay({ db: deps.db.kysely, pool: deps.db.pool, queues: deps.queues, logger: app.log, pollMs: config.OUTBOX_POLL_MS }));
  const address = await app.listen({ host: config.HOST, port: portOf(config, mod.name) });
  return {
    name: mod.name,
    app,
    url: address,
    async stop() {
      await app.close();
      await Promise.all(background.map((b) => b.stop()));
      await deps.close();
    },
  };
}

/** Stops `stoppers` in order on SIGINT/SIGTERM or a fatal error, within the grace period. */
export function closeOnSignals(config: Config, log: { info(msg: string): void; error(obj: unknown, msg?: string): void }, stoppers: (() => Promise<void>)[]): void {
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS, logger: false }, async ({ err, signal }) => {
    if (err) log.error({ err }, 'stopping after a fatal error');
    else log.info(`stopping on ${signal ?? 'request'}`);
    for (const stop of stoppers) await stop();
  });
}
