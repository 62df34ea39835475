import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { BEARER_SECURITY, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { Problem } from '../../../shared/errors/problem.js';
import { findSender } from '../../../shared/registry/recipients.js';
import { ingestionProblems } from '../problems.js';
import { checkWebhookUrl } from '../webhooks.js';
import type { IngestionRouteOptions } from './context.js';
import { DateTime, errors, Orgnr } from './schemas.js';

const Webhook = Type.Object({ orgnr: Orgnr, url: Type.String(), createdAt: DateTime, updatedAt: DateTime });
const Params = Type.Object({ orgnr: Orgnr });

const webhookRoutes: FastifyPluginAsync<IngestionRouteOptions> = async (app, { deps }) => {
  const db = deps.db.kysely;
  const view = (r: { sender_orgnr: string; url: string; created_at: Date; updated_at: Date }) => ({
    orgnr: r.sender_orgnr,
    url: r.url,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  });

  app.put(
    '/v1/admin/senders/:orgnr/webhook',
    {
      onRequest: requireClient(SCOPES.admin),
      schema: {
        summary: "Set a sender's receipt webhook",
        description:
          'Each new receipt is POSTed to this HTTPS URL with header postbud-signature: a detached ES256 JWS (typ postbud-webhook+jws) over the body, ' +
          'verifiable with /.well-known/jwks.json. Retried with backoff; a 2xx acknowledges the receipt. Loopback and private networks are refused.',
        tags: ['webhooks'],
        security: BEARER_SECURITY,
        params: Params,
        body: Type.Object({ url: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
        response: { 200: Webhook, ...errors(404, 422) },
      },
    },
    async (request) => {
      const { orgnr } = request.params as { orgnr: string };
      if (!(await findSender(db, orgnr))) throw new Problem(ingestionProblems.SENDER_NOT_FOUND, 'No sender with this organisation number');
      const url = await checkWebhookUrl((request.body as { url: string }).url, deps.config.WEBHOOK_ALLOW_PRIVATE);
      const row = await db
        .insertInto('webhooks')
        .values({ sender_orgnr: orgnr, url: url.toString() })
        .onConflict((oc) => oc.column('sender_orgnr').doUpdateSet({ url: url.toString(), updated_at: new Date() }))
        .returningAll()
        .executeTakeFirstOrThrow();
      request.log.info({ orgnr }, 'webhook set');
      return view(row);
    },
  );

  app.get(
    '/v1/admin/senders/:orgnr/webhook',
    {
      onRequest: requireClient(SCOPES.admin),
      schema: { summary: "A sender's receipt webhook", tags: ['webhooks'], security: BEARER_SECURITY, params: Params, response: { 200: Webhook, ...errors(404) } },
    },
    async (request) => {
      const row = await db.selectFrom('webhooks').selectAll().where('sender_orgnr', '=', (request.params as { orgnr: string }).orgnr).executeTakeFirst();
      if (!row) throw new Problem(ingestionProblems.WEBHOOK_NOT_FOUND, 'This sender has no webhook');
      return view(row);
    },
  );

  app.delete(
    '/v1/admin/senders/:orgnr/webhook',
    {
      onRequest: requireClient(SCOPES.admin),
      schema: { summary: "Remove a sender's receipt webhook", tags: ['webhooks'], security: BEARER_SECURITY, params: Params, response: { 204: Type.Null(), ...errors(404) } },
    },
    async (request, reply) => {
      const r = await db.deleteFrom('webhooks').where('sender_orgnr', '=', (request.params as { orgnr: string }).orgnr).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw new Problem(ingestionProblems.WEBHOOK_NOT_FOUND, 'This sender has no webhook');
      return reply.code(204).send();
    },
  );
};

export default webhookRoutes;
