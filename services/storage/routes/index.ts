import type { FastifyPluginAsync } from 'fastify';
import type { ServiceDeps } from '../../../shared/app/deps.js';

/** The storage service's resources; each resource registers from its own file. */
const routes: FastifyPluginAsync<{ deps: ServiceDeps }> = async () => {};

export default routes;
