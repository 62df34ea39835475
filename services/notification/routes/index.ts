import type { FastifyPluginAsync } from 'fastify';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import adminRoutes from './admin.js';
import invitationRoutes from './invitations.js';

/** The notification service's resources; each resource registers from its own file. */
const routes: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  await app.register(invitationRoutes, { deps });
  await app.register(adminRoutes, { deps });
};

export default routes;
