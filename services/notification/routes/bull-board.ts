import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyPluginAsync } from 'fastify';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { ALL_QUEUES } from '../context.js';

export const BULL_BOARD_PATH = '/admin/queues';

/** Bull Board over the notification queues, for operators holding postbud:admin. */
const bullBoard: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const server = new FastifyAdapter();
  createBullBoard({
    queues: ALL_QUEUES.map((name) => new BullMQAdapter(deps.queues.queue(name))),
    // @bull-board/fastify pins its own (patch-level older) copy of @bull-board/api: same shape, other class identity.
    serverAdapter: server as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'postbud notification' } },
  });
  server.setBasePath(BULL_BOARD_PATH);
  await app.register(
    async (scope) => {
      // Every page, asset and API call of the board is behind the admin scope.
      scope.addHook('onRequest', requireClient(SCOPES.admin));
      await scope.register(server.registerPlugin());
    },
    { prefix: BULL_BOARD_PATH },
  );
};

export default bullBoard;
