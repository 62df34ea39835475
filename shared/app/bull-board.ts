import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyPluginAsync, FastifyPluginCallback } from 'fastify';
import { requireClient } from '../auth/guards.js';
import { SCOPES } from '../auth/scopes.js';
import { commonProblems, Problem, PROBLEM_CONTENT_TYPE } from '../errors/problem.js';

export const BULL_BOARD_PATH = '/admin/queues';

/** Bull Board over a service's queues, for operators holding postbud:admin (every service's, shared/app/queue-admin.ts). */
export const bullBoard: FastifyPluginAsync<{ queues: Queue[]; service: string }> = async (app, opts) => {
  const server = new FastifyAdapter();
  createBullBoard({
    queues: opts.queues.map((q) => new BullMQAdapter(q)),
    // @bull-board/fastify pins its own (patch-level older) copy of @bull-board/api: same shape, other class identity.
    serverAdapter: server as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: `postbud ${opts.service}` } },
  });
  server.setBasePath(BULL_BOARD_PATH);
  await app.register(
    async (scope) => {
      // Every page, asset and API call of the board is behind the admin scope.
      scope.addHook('onRequest', requireClient(SCOPES.admin));
      // Answers the board itself gives with an error status (`{error: 'Queue not found'}`) leave
      // as problem+json like every other error, with the board's own words as the detail.
      scope.addHook('onSend', async (_request, reply, payload) => {
        if (reply.statusCode < 400 || String(reply.getHeader('content-type') ?? '').startsWith(PROBLEM_CONTENT_TYPE)) return payload;
        reply.type(PROBLEM_CONTENT_TYPE);
        return JSON.stringify(boardProblem(reply.statusCode, payload).body(_request.url.split('?')[0]));
      });
      await scope.register(keepOurErrorHandler(server.registerPlugin() as unknown as FastifyPluginCallback));
    },
    { prefix: BULL_BOARD_PATH },
  );
};

/**
 * @bull-board/fastify sets an error handler of its own in its plugin scope, which answers plain
 * JSON with the error's stack (in development) and drops the WWW-Authenticate header of a 401.
 * The plugin runs here with `setErrorHandler` disabled, so the service's problem+json handler,
 * inherited from the root, answers every error the board's routes and hooks raise.
 */
function keepOurErrorHandler(plugin: FastifyPluginCallback): FastifyPluginCallback {
  return (instance, opts, done) => {
    (instance as { setErrorHandler: unknown }).setErrorHandler = (): FastifyInstance => instance;
    plugin(instance, opts, done);
  };
}

/** A problem for an error answer the board built itself; only its short `error` text is kept. */
function boardProblem(status: number, payload: unknown): Problem {
  let detail: string | undefined;
  try {
    const body = JSON.parse(typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : '') as { error?: unknown; message?: unknown };
    const text = typeof body.error === 'string' ? body.error : typeof body.message === 'string' ? body.message : undefined;
    detail = text?.split('\n')[0]?.slice(0, 200);
  } catch {
    detail = undefined;
  }
  const type = Object.values(commonProblems).find((p) => p.status === status) ?? (status >= 500 ? commonProblems.INTERNAL : commonProblems.VALIDATION);
  return new Problem(type, status >= 500 ? 'An unexpected error occurred; it has been logged with the request id' : detail);
}

