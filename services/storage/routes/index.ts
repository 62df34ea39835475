import type { FastifyPluginAsync } from 'fastify';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { registerJwksRoute } from '../../../shared/crypto/jwks-route.js';
import { storageContext } from '../../../shared/storage/context.js';
import deliveries from './deliveries.js';

/** The storage service's resources; each resource registers from its own file. */
const routes: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  registerJwksRoute(app, () => storageContext(deps).hub);
  await app.register(deliveries, { deps });
};

export default routes;
