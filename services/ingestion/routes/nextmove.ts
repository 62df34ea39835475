import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { EXAMPLE } from '../../../shared/app/example-values.js';
import { Problem } from '../../../shared/errors/problem.js';
import { capabilitiesFor } from '../capabilities.js';
import { requireActiveSender } from '../intake.js';
import { cleanPurpose } from '../../../shared/registry/lookup-audit.js';
import { CapabilitiesView, nextMoveCapabilities } from '../nextmove/capabilities.js';
import { refuseUnsafeInput } from '../nextmove/input.js';
import { installNextMoveErrors, nextMoveErrors } from '../nextmove/errors.js';
import { pageOf, PageOf, PagingQuery, type PagingParams } from '../nextmove/paging.js';
import { ConversationView, conversationBy, findConversations, findStatuses, MessageStatusView, NEXTMOVE_STATUSES, peekStatus, type ConversationQuery, type StatusQuery } from '../nextmove/statuses.js';
import {
  createSubscription,
  deleteAllSubscriptions,
  deleteSubscription,
  getSubscription,
  listSubscriptions,
  SubscriptionInput,
  SubscriptionView,
  updateSubscription,
  type SubscriptionContext,
} from '../nextmove/subscriptions.js';
import { ingestionProblems } from '../problems.js';
import type { IngestionRouteOptions } from './context.js';
import nextMoveMessages from './nextmove-messages.js';

/**
 * The eFormidling next-move API under /api/ (docs/eformidling.md): what an agency system built
 * for the integrasjonspunkt calls, for DPI. Same tokens and scope as /v1/ (postbud:send); errors
 * in next-move's shape.
 */
const guarded = { onRequest: requireClient(SCOPES.send) };
const tags = ['next-move'];
const Empty = Type.Null({ description: 'No body' });

const nextMoveRoutes: FastifyPluginAsync<IngestionRouteOptions> = async (app, opts) => {
  const { deps } = opts;
  const db = deps.db.kysely;
  installNextMoveErrors(app, '/api/');
  app.addHook('preHandler', refuseUnsafeInput);
  const org = (request: FastifyRequest) => clientOf(request).org;

  app.get(
    '/capabilities/:personId',
    {
      ...guarded,
      schema: {
        summary: 'Capabilities of a person (next-move)',
        description:
          'DPI digital when the person can get digital post now, else DPI print when a print provider is active, else none; from the same routing as /v1/capabilities. ' +
          'An organisation number is refused: DPO is out of scope.',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ personId: Type.String({ maxLength: 64, description: 'A fødselsnummer or D-number', examples: [EXAMPLE.personId] }) }),
        querystring: Type.Object(
          {
            securityLevel: Type.Optional(Type.Integer({ minimum: 1, maximum: 4, description: 'The level the message will need (1-4)' })),
            process: Type.Optional(Type.String({ maxLength: 255 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: CapabilitiesView, ...nextMoveErrors() },
      },
    },
    async (request) => {
      const { personId } = request.params as { personId: string };
      await requireActiveSender(deps, org(request));
      if (/^(0192:)?[0-9]{9}$/.test(personId)) {
        throw new Problem(ingestionProblems.NEXTMOVE_RECEIVER_NOT_PERSON, 'Capabilities are for persons (DPI); organisations (DPO) are not supported');
      }
      const purpose = cleanPurpose(request.headers['x-purpose'] as string | undefined);
      const caps = await capabilitiesFor(db, clientOf(request), personId, { api: 'eformidling-capabilities', purpose, now: deps.clock?.() ?? new Date() });
      return nextMoveCapabilities(caps, request.query as { securityLevel?: number; process?: string });
    },
  );

  await app.register(nextMoveMessages, { deps: opts.deps, storage: opts.storage, intake: opts.intake });

  // Statuses.
  const StatusPage = PageOf(MessageStatusView, 'A page of message statuses');
  const StatusFilter = {
    id: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    messageId: Type.Optional(Type.String({ maxLength: 64 })),
    conversationId: Type.Optional(Type.String({ maxLength: 255 })),
    status: Type.Optional(Type.String({ maxLength: 200, pattern: '^[A-Z_]+(,[A-Z_]+)*$', description: `One or more of ${NEXTMOVE_STATUSES.join(', ')}` })),
    fromDateTime: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })),
    toDateTime: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })),
    ...PagingQuery,
  };
  app.get(
    '/statuses',
    {
      ...guarded,
      schema: {
        summary: 'Find message statuses (next-move)',
        description: 'Statuses of your next-move messages (OPPRETTET, SENDT, LEVERT, LEST, MOTTATT, FEIL, LEVETID_UTLOPT), mapped from the evidence log as docs/ingestion.md maps them.',
        tags,
        security: BEARER_SECURITY,
        querystring: Type.Object(StatusFilter, { additionalProperties: false }),
        response: { 200: StatusPage, ...nextMoveErrors() },
      },
    },
    async (request) => findStatuses(db, org(request), request.query as StatusQuery),
  );

  app.get(
    '/statuses/peek',
    {
      ...guarded,
      schema: {
        summary: 'The latest message status (next-move)',
        tags,
        security: BEARER_SECURITY,
        response: { 200: MessageStatusView, 204: Type.Null({ description: 'No status yet' }), ...nextMoveErrors() },
      },
    },
    async (request, reply) => {
      const latest = await peekStatus(db, org(request));
      return latest ? latest : reply.code(204).send();
    },
  );

  app.get(
    '/statuses/:messageId',
    {
      ...guarded,
      schema: {
        summary: 'Statuses of one message (next-move)',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ messageId: Type.String({ maxLength: 64 }) }),
        querystring: Type.Object(PagingQuery, { additionalProperties: false }),
        response: { 200: StatusPage, ...nextMoveErrors() },
      },
    },
    async (request) => findStatuses(db, org(request), { ...(request.query as PagingParams), messageId: (request.params as { messageId: string }).messageId }),
  );

  // Conversations.
  app.get(
    '/conversations',
    {
      ...guarded,
      schema: {
        summary: 'Find conversations (next-move)',
        tags,
        security: BEARER_SECURITY,
        querystring: Type.Object(
          {
            messageId: Type.Optional(Type.String({ maxLength: 64 })),
            conversationId: Type.Optional(Type.String({ maxLength: 255 })),
            receiverIdentifier: Type.Optional(Type.String({ maxLength: 64 })),
            messageReference: Type.Optional(Type.String({ maxLength: 255 })),
            serviceIdentifier: Type.Optional(Type.String({ maxLength: 64 })),
            direction: Type.Optional(Type.String({ maxLength: 20 })),
            finished: Type.Optional(Type.Boolean()),
            ...PagingQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: PageOf(ConversationView, 'A page of conversations'), ...nextMoveErrors() },
      },
    },
    async (request) => findConversations(db, org(request), request.query as ConversationQuery),
  );

  app.get(
    '/conversations/:id',
    {
      ...guarded,
      schema: {
        summary: 'A conversation by its numeric id (next-move)',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
        response: { 200: ConversationView, ...nextMoveErrors(404) },
      },
    },
    async (request) => conversationBy(db, org(request), { convId: (request.params as { id: number }).id }),
  );

  app.get(
    '/conversations/messageId/:messageId',
    {
      ...guarded,
      schema: {
        summary: 'A conversation by messageId (next-move)',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ messageId: Type.String({ maxLength: 64 }) }),
        response: { 200: ConversationView, ...nextMoveErrors(404) },
      },
    },
    async (request) => conversationBy(db, org(request), { messageId: (request.params as { messageId: string }).messageId }),
  );

  // Webhook subscriptions.
  const sctx: SubscriptionContext = { db, hub: opts.storage.hub, allowPrivate: deps.config.WEBHOOK_ALLOW_PRIVATE, timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS };
  const SubscriptionId = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });
  const id = (request: FastifyRequest) => (request.params as { id: number }).id;
  const subscriptionDescription =
    'Status events of your messages are POSTed to pushEndpoint as next-move status events, signed like receipt webhooks (header postbud-signature: a detached ES256 JWS over the body, ' +
    'verifiable with /.well-known/jwks.json), retried with backoff. The endpoint is pinged first and must answer 2xx; loopback and private networks are refused.';

  app.get(
    '/subscriptions',
    {
      ...guarded,
      schema: {
        summary: 'List subscriptions (next-move)',
        tags,
        security: BEARER_SECURITY,
        querystring: Type.Object(PagingQuery, { additionalProperties: false }),
        response: { 200: PageOf(SubscriptionView, 'A page of subscriptions'), ...nextMoveErrors() },
      },
    },
    async (request) => {
      const q = request.query as PagingParams;
      const { items, total } = await listSubscriptions(db, org(request), q.page ?? 0, q.size ?? 10);
      return pageOf(items, total, q, false);
    },
  );

  app.post(
    '/subscriptions',
    {
      ...guarded,
      schema: { summary: 'Create a subscription (next-move)', description: subscriptionDescription, tags, security: BEARER_SECURITY, body: SubscriptionInput, response: { 200: SubscriptionView, ...nextMoveErrors(422) } },
    },
    async (request) => {
      await requireActiveSender(deps, org(request));
      const created = await createSubscription(sctx, org(request), request.body as SubscriptionInput);
      request.log.info({ subscriptionId: created.id }, 'next-move subscription created');
      return created;
    },
  );

  app.delete(
    '/subscriptions',
    { ...guarded, schema: { summary: 'Delete all your subscriptions (next-move)', tags, security: BEARER_SECURITY, response: { 200: Empty, ...nextMoveErrors() } } },
    async (request, reply) => {
      await deleteAllSubscriptions(db, org(request));
      return reply.code(200).send();
    },
  );

  app.get(
    '/subscriptions/:id',
    { ...guarded, schema: { summary: 'Get a subscription (next-move)', tags, security: BEARER_SECURITY, params: SubscriptionId, response: { 200: SubscriptionView, ...nextMoveErrors(404) } } },
    async (request) => getSubscription(db, org(request), id(request)),
  );

  app.put(
    '/subscriptions/:id',
    {
      ...guarded,
      schema: {
        summary: 'Update a subscription (next-move)',
        description: subscriptionDescription,
        tags,
        security: BEARER_SECURITY,
        params: SubscriptionId,
        body: SubscriptionInput,
        response: { 200: Empty, ...nextMoveErrors(404, 422) },
      },
    },
    async (request, reply) => {
      await requireActiveSender(deps, org(request));
      await updateSubscription(sctx, org(request), id(request), request.body as SubscriptionInput);
      return reply.code(200).send();
    },
  );

  app.delete(
    '/subscriptions/:id',
    { ...guarded, schema: { summary: 'Delete a subscription (next-move)', tags, security: BEARER_SECURITY, params: SubscriptionId, response: { 200: Empty, ...nextMoveErrors(404) } } },
    async (request, reply) => {
      await deleteSubscription(db, org(request), id(request));
      return reply.code(200).send();
    },
  );
};

export default nextMoveRoutes;
