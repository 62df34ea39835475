import type { FastifyPluginAsync } from 'fastify';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import adminRoutes from './admin.js';
import changeRoutes from './changes.js';
import citizenRoutes from './citizen.js';
import lookupRoutes from './lookup.js';
import providerRoutes from './provider.js';

/** The registry service's resources; each resource registers from its own file. */
const routes: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  await app.register(lookupRoutes, { deps });
  await app.register(changeRoutes, { deps });
  await app.register(citizenRoutes, { deps });
  await app.register(providerRoutes, { deps });
  await app.register(adminRoutes, { deps });
};

export default routes;
