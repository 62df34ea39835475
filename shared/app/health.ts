import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { pendingMigrations } from '../db/migrate.js';
import type { ServiceDeps } from './deps.js';

const Check = Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) });
const Ready = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not-ready')]),
  checks: Type.Object({ database: Check, queue: Check, migrations: Check }),
});

async function check(fn: () => Promise<string | undefined>): Promise<{ ok: boolean; detail?: string }> {
  try {
    const detail = await fn();
    return detail === undefined ? { ok: true } : { ok: false, detail };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

/**
 * Liveness says the process runs; readiness says it can do its work: database reachable, queue
 * backend reachable and the schema at the version this code expects.
 */
export function installHealth(app: FastifyInstance, deps: Pick<ServiceDeps, 'db' | 'queues'>): void {
  app.get('/health/live', { schema: { tags: ['health'], summary: 'Liveness: the process runs', description: 'Public and not rate-limited, for orchestrators. Never touches a dependency.', response: { 200: Type.Object({ status: Type.Literal('live') }) } } }, async () => ({
    status: 'live' as const,
  }));

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: database, queue backend and migrations',
        description: 'Public and not rate-limited, for orchestrators and load balancers: 200 when every check passes, else 503 with the failing checks.',
        response: { 200: Ready, 503: Ready },
      },
    },
    async (_request, reply) => {
      const [database, queue, migrations] = await Promise.all([
        check(async () => {
          await withTimeout(sql`select 1`.execute(deps.db.kysely), 2000);
          return undefined;
        }),
        check(async () => {
          await withTimeout(deps.queues.ping(), 2000);
          return undefined;
        }),
        check(async () => {
          const pending = await withTimeout(pendingMigrations(deps.db.kysely), 2000);
          return pending.length === 0 ? undefined : `pending: ${pending.join(', ')}`;
        }),
      ]);
      const ok = database.ok && queue.ok && migrations.ok;
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready', checks: { database, queue, migrations } });
    },
  );
}
