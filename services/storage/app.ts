import { createApp, type App } from '../../shared/app/create-app.js';
import type { ServiceDeps } from '../../shared/app/deps.js';
import type { ServiceModule } from '../../shared/runtime/service-module.js';
import { registerQueueMetrics } from '../../shared/app/queue-admin.js';
import { STORAGE_QUEUE, startStorageBackground } from './background.js';
import routes from './routes/index.js';

export async function buildApp(deps: ServiceDeps): Promise<App> {
  const app = await createApp({ name: 'storage', description: 'Sealed packages that mailbox providers pull, acknowledge and report on' }, deps);
  registerQueueMetrics(app.metrics, { service: 'storage', queues: deps.queues, names: [STORAGE_QUEUE] });
  await app.register(routes, { deps });
  return app;
}

export const service: ServiceModule = { name: 'storage', buildApp, startBackground: startStorageBackground };
