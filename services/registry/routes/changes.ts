import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { readChanges } from '../changes.js';
import { DateTime, errors } from './schemas.js';

/** The change feed for caches and mirrors. */
const changeRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/changes',
    {
      onRequest: requireClient(SCOPES.lookup),
      schema: {
        summary: 'Persons changed after a sequence number',
        description:
          'An ordered, gap-free sequence: every change has a seq one above the previous, and a seq is only visible once every smaller one is. Poll with after = the last seq you processed (0 to start); re-read each changed person with a lookup.',
        tags: ['changes'],
        security: BEARER_SECURITY,
        querystring: Type.Object(
          {
            after: Type.String({ pattern: '^[0-9]{1,18}$', maxLength: 18, default: '0', description: 'the last seq already processed' }),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            changes: Type.Array(Type.Object({ seq: Type.String(), personId: Type.String(), kind: Type.String(), changedAt: DateTime })),
            next: Type.String({ description: 'pass as `after` in the next call' }),
          }),
          ...errors(),
        },
      },
    },
    async (request) => {
      const { after, limit } = request.query;
      const rows = await readChanges(deps.db.kysely, after, limit);
      return {
        changes: rows.map((r) => ({ seq: r.seq, personId: r.personId, kind: r.kind, changedAt: r.changedAt.toISOString() })),
        next: rows.length > 0 ? rows[rows.length - 1]!.seq : String(BigInt(after)),
      };
    },
  );
};

export default changeRoutes;
