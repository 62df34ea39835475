import { createApp, type App } from '../../shared/app/create-app.js';
import type { ServiceDeps } from '../../shared/app/deps.js';
import type { ServiceModule } from '../../shared/runtime/service-module.js';
import routes from './routes/index.js';

export async function buildApp(deps: ServiceDeps): Promise<App> {
  const app = await createApp({ name: 'registry', description: 'Contact and reservation registry: lookups, citizen self-service, provider mailboxes, admin onboarding' }, deps);
  await app.register(routes, { deps });
  return app;
}

export const service: ServiceModule = { name: 'registry', buildApp };
