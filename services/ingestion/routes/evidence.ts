import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { errors, Uuid } from '../../../shared/app/schemas.js';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { BundleSchema } from '../../../shared/evidence/schemas.js';
import { evidenceBundle } from '../evidence.js';
import type { IngestionRouteOptions } from './context.js';

const evidence: FastifyPluginAsync<IngestionRouteOptions> = async (app, { deps, storage }) => {
  app.get(
    '/v1/messages/:id/evidence',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Evidence bundle of one of your letters, to verify offline',
        description:
          'Every event with its canonical data, hash and prevHash (an event you may not see, an OPENED of a letter sent without openReceipt, is redacted: `redacted: true`, no type, time or data, but its hash, prevHash and inclusion proof); every receipt (JWS); the documents\' hashes from the SEALED event; the latest signed tree head with an inclusion proof per event; a hub statement listing all of it; and the public keys of every signature. Check it with `postbud verify --bundle FILE --jwks JWKS` or `scripts/verify-bundle.py` (format: docs/evidence.md).',
        tags: ['messages'],
        security: BEARER_SECURITY,
        params: Type.Object({ id: Uuid }),
        response: { 200: BundleSchema, ...errors(404) },
      },
    },
    async (request) => evidenceBundle(deps.db.kysely, storage.hub, clientOf(request).org, (request.params as { id: string }).id),
  );
};

export default evidence;
