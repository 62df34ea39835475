import { createApp, type App } from '../../shared/app/create-app.js';
import type { ServiceDeps } from '../../shared/app/deps.js';
import type { ServiceModule } from '../../shared/runtime/service-module.js';
import { registerAttemptMetrics } from './attempt-metrics.js';
import { notificationContext } from './context.js';
import { registerQueueMetrics } from './queue-stats.js';
import routes from './routes/index.js';
import { startWorkers } from './workers.js';

export async function buildApp(deps: ServiceDeps): Promise<App> {
  const app = await createApp({ name: 'notification', description: 'SMS and e-mail alerts to citizens, through BullMQ workers', queueRequired: true }, deps);
  const ctx = notificationContext(deps);
  registerQueueMetrics(app.metrics, ctx);
  registerAttemptMetrics(app.metrics, ctx);
  await app.register(routes, { deps });
  return app;
}

export const service: ServiceModule = { name: 'notification', buildApp, startBackground: startWorkers };
