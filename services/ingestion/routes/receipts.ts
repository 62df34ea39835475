import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { ackReceipts, pullReceipts } from '../receipts.js';
import type { IngestionRouteOptions } from './context.js';
import { DateTime, errors, Uuid } from './schemas.js';

const Receipt = Type.Object({
  id: Uuid,
  type: Type.String({ description: 'DELIVERED, OPENED, NOTIFIED, NOTIFICATION_FAILED, PRINT_ACCEPTED, RETURNED, ERROR, CANCELLED' }),
  messageId: Uuid,
  createdAt: DateTime,
  jws: Type.String({ description: 'The receipt signed by the hub (ES256, typ postbud-receipt+jws); verify with /.well-known/jwks.json' }),
  receipt: Type.Record(Type.String(), Type.Unknown(), { description: 'The JWS payload, decoded (not a substitute for verifying)' }),
});

const receiptRoutes: FastifyPluginAsync<IngestionRouteOptions> = async (app, { deps }) => {
  app.get(
    '/v1/receipts',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Your unacknowledged receipts, oldest first',
        description: 'Pulling changes nothing; acknowledge with POST /v1/receipts/ack. A receipt is returned until acknowledged.',
        tags: ['receipts'],
        security: BEARER_SECURITY,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 100 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ receipts: Type.Array(Receipt) }), ...errors() },
      },
    },
    async (request) => ({ receipts: await pullReceipts(deps.db.kysely, clientOf(request).org, (request.query as { limit?: number }).limit ?? 100) }),
  );

  app.post(
    '/v1/receipts/ack',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Acknowledge receipts (idempotent)',
        tags: ['receipts'],
        security: BEARER_SECURITY,
        body: Type.Object({ ids: Type.Array(Uuid, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ acknowledged: Type.Integer({ description: 'Receipts newly acknowledged by this call' }) }), ...errors() },
      },
    },
    async (request) => ({ acknowledged: await ackReceipts(deps.db.kysely, clientOf(request).org, (request.body as { ids: string[] }).ids) }),
  );
};

export default receiptRoutes;
