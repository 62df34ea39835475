import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { JWKS_MAX_AGE_SECONDS, type HubKeys } from './hub-keys.js';

export const JwksSchema = Type.Object(
  {
    keys: Type.Array(
      Type.Object(
        {
          kid: Type.String(),
          kty: Type.String(),
          alg: Type.String(),
          use: Type.String(),
          crv: Type.Optional(Type.String()),
          x: Type.Optional(Type.String()),
          y: Type.Optional(Type.String()),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { description: 'The hub signing keys (current first, retired ones kept so old signatures verify)' },
);

/**
 * `GET /.well-known/jwks.json`: the hub's public signing keys, for manifests and receipts. Any
 * service can mount it; all read the same `hub_keys` table.
 */
export function registerJwksRoute(app: FastifyInstance, hub: () => HubKeys): void {
  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['keys'],
        summary: 'The hub signing keys (JWKS)',
        description: 'ES256 public keys that verify package manifests (META-INF/manifest.jws) and receipts. A new key is listed at least one cache lifetime (max-age) before it signs; after a rotation the old keys stay listed.',
        response: { 200: JwksSchema },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
      return hub().jwks();
    },
  );
}
