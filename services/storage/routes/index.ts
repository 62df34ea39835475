import type { FastifyPluginAsync } from 'fastify';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { registerJwksRoute } from '../../../shared/crypto/jwks-route.js';
import { storageContext } from '../../../shared/storage/context.js';
import { queueAdmin } from '../../../shared/app/queue-admin.js';
import { STORAGE_QUEUE } from '../background.js';
import { storageProblems } from '../problems.js';
import deliveries from './deliveries.js';
import evidence from './evidence.js';
import moves from './moves.js';

/** The storage service's resources; each resource registers from its own file. */
const routes: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  registerJwksRoute(app, () => storageContext(deps).hub);
  await app.register(deliveries, { deps });
  await app.register(evidence, { deps });
  await app.register(moves, { deps });
  // The re-addressing queue (mailbox changes from the registry), for operators.
  await app.register(queueAdmin, {
    service: 'storage',
    queues: deps.queues,
    names: [STORAGE_QUEUE],
    problems: { jobNotFound: storageProblems.JOB_NOT_FOUND, jobNotFailed: storageProblems.JOB_NOT_FAILED },
  });
};

export default routes;
