import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, citizenOf, clientOf, requireCitizen, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { commonProblems, Problem } from '../../../shared/errors/problem.js';
import { certificatePem, hubTransportKey } from '../../../shared/crypto/transport-key.js';
import type { MoveState } from '../../../shared/db/tables/moves.js';
import { storageContext } from '../../../shared/storage/context.js';
import { citizenMove, citizenMoves, exportFeed, operatorMoves, receiveExport, reportMissing, requestMove, type MoveView } from '../moves.js';
import { DateTime, errors, Uuid } from './schemas.js';

const Orgnr = Type.String({ pattern: '^[0-9]{9}$' });
const MoveStateSchema = Type.Union(['IN_PROGRESS', 'COMPLETED', 'PARTIAL', 'FAILED'].map((s) => Type.Literal(s)), {
  description: 'IN_PROGRESS until every letter is answered or the deadline passes; COMPLETED (all moved or reported deleted), PARTIAL (some never handed over), FAILED (none)',
});
const ItemState = Type.Union(['PENDING', 'MOVED', 'MISSING', 'FAILED'].map((s) => Type.Literal(s)));
const Counts = {
  letters: Type.Integer(),
  moved: Type.Integer(),
  missing: Type.Integer({ description: 'The previous provider no longer has them (deleted)' }),
  failed: Type.Integer({ description: 'Not handed over before the deadline' }),
  pending: Type.Integer(),
};
/** What operators see of a move (no personId); the citizen sees the items and the notice too. */
const MoveSummary = {
  id: Uuid,
  state: MoveStateSchema,
  failureReason: Type.Union([Type.String({ maxLength: 100 }), Type.Null()]),
  toProviderOrgnr: Orgnr,
  fromProviderOrgnrs: Type.Array(Orgnr),
  createdAt: DateTime,
  deadlineAt: DateTime,
  finishedAt: Type.Union([DateTime, Type.Null()]),
  ...Counts,
};
const MoveSchema = Type.Object({
  ...MoveSummary,
  items: Type.Array(
    Type.Object({ id: Uuid, messageId: Uuid, fromProviderOrgnr: Orgnr, state: ItemState, reason: Type.Union([Type.String({ maxLength: 100 }), Type.Null()]), newDeliveryId: Type.Union([Uuid, Type.Null()]) }),
  ),
  notice: Type.Union([Type.String({ maxLength: 500 }), Type.Null()], { description: 'What the citizen is told about the outcome' }),
});
const iso = (d: Date | null) => (d ? d.toISOString() : null);
const moveJson = (m: MoveView) => ({ ...m, createdAt: m.createdAt.toISOString(), deadlineAt: m.deadlineAt.toISOString(), finishedAt: iso(m.finishedAt) });

const ItemParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const ExportResult = Type.Object({ itemId: Uuid, state: ItemState, newDeliveryId: Type.Union([Uuid, Type.Null()]) });
const TransportCertificate = Type.Object({
  id: Type.String({ maxLength: 100 }),
  certificate: Type.String({ maxLength: 16384, description: 'The hub transport certificate, base64 DER (RSA): seal exports for it' }),
  pem: Type.String({ maxLength: 24576 }),
});

const moves: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const ctx = () => storageContext(deps);
  const config = deps.config;
  // An exported letter: the CMS bytes. Bounded like one letter, plus the CMS and ZIP overhead.
  const maxExport = config.MESSAGE_MAX_BYTES + 1024 * 1024;
  app.addContentTypeParser('application/pkcs7-mime', { parseAs: 'buffer', bodyLimit: maxExport }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxExport }, (_req, body, done) => done(null, body));

  app.post(
    '/v1/me/moves',
    {
      onRequest: requireCitizen('idporten-loa-substantial'),
      schema: {
        tags: ['moves'],
        summary: 'Move my delivered letters to my new mailbox (flyttet digitalpost)',
        description:
          'Every letter delivered to you through the hub and still at a provider other than your current one is asked back from that provider and offered to your active digital mailbox. ' +
          'No new alerts, no new deadline for the sender. Needs idporten-loa-substantial or higher. One move at a time.',
        security: BEARER_SECURITY,
        body: Type.Object({}, { additionalProperties: false }),
        response: { 201: MoveSchema, ...errors(409) },
      },
    },
    async (request, reply) => {
      const move = await requestMove(ctx(), citizenOf(request).pid, { timeoutSeconds: config.MOVE_TIMEOUT_SECONDS, now: deps.clock?.() ?? new Date() });
      request.log.info({ moveId: move.id, letters: move.letters }, 'move requested');
      return reply.code(201).header('location', `/v1/me/moves/${move.id}`).send(moveJson(move));
    },
  );

  app.get(
    '/v1/me/moves',
    {
      onRequest: requireCitizen(),
      schema: { tags: ['moves'], summary: 'My moves, newest first, with their progress', security: BEARER_SECURITY, response: { 200: Type.Object({ moves: Type.Array(MoveSchema) }), ...errors() } },
    },
    async (request) => ({ moves: (await citizenMoves(deps.db.kysely, citizenOf(request).pid)).map(moveJson) }),
  );

  app.get(
    '/v1/me/moves/:id',
    {
      onRequest: requireCitizen(),
      schema: { tags: ['moves'], summary: 'One of my moves', security: BEARER_SECURITY, params: ItemParams, response: { 200: MoveSchema, ...errors(404) } },
    },
    async (request) => moveJson(await citizenMove(deps.db.kysely, citizenOf(request).pid, (request.params as { id: string }).id)),
  );

  app.get(
    '/v1/moves/transport-certificate',
    {
      onRequest: requireClient(SCOPES.provider),
      schema: { tags: ['moves'], summary: 'The certificate providers seal exported letters for', security: BEARER_SECURITY, response: { 200: TransportCertificate, ...errors() } },
    },
    async () => {
      const transport = await hubTransportKey(ctx().db, ctx().keyring);
      return { id: transport.id, certificate: transport.certificateDer.toString('base64'), pem: certificatePem(transport.certificateDer) };
    },
  );

  app.get(
    '/v1/moves/exports',
    {
      onRequest: requireClient(SCOPES.provider),
      schema: {
        tags: ['moves'],
        summary: 'Letters you are asked to export because their citizen moved to another provider',
        description:
          'One item per letter, until answered (PUT .../package with the letter sealed for the hub transport certificate, or POST .../missing) or until the move deadline. ' +
          'docs/storage.md describes the protocol.',
        security: BEARER_SECURITY,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            transportCertificate: TransportCertificate,
            exports: Type.Array(
              Type.Object({
                id: Uuid,
                moveId: Uuid,
                deliveryId: Uuid,
                messageId: Uuid,
                personId: Type.String({ maxLength: 11 }),
                mailboxAddress: Type.Union([Type.String({ maxLength: 255 }), Type.Null()]),
                deadlineAt: DateTime,
              }),
            ),
          }),
          ...errors(),
        },
      },
    },
    async (request) => {
      const { limit } = request.query as { limit: number };
      const { transport, exports } = await exportFeed(ctx(), clientOf(request).org, limit);
      return {
        transportCertificate: { id: transport.id, certificate: transport.certificateDer.toString('base64'), pem: certificatePem(transport.certificateDer) },
        exports: exports.map((e) => ({ ...e, deadlineAt: e.deadlineAt.toISOString() })),
      };
    },
  );

  app.put(
    '/v1/moves/exports/:id/package',
    {
      onRequest: requireClient(SCOPES.provider),
      schema: {
        tags: ['moves'],
        summary: 'Hand over one letter: the package you received, sealed for the hub transport certificate',
        description:
          'Body: CMS EnvelopedData (application/pkcs7-mime, DER), the same profile the hub delivers with (RSAES-OAEP SHA-256 key transport for the transport certificate, AES-256-CBC), ' +
          'around the ASiC-E package exactly as you received it. The hub checks that the manifest is the one it sealed and every document matches, then offers it to the new provider. ' +
          'Sending it again answers the same.',
        security: BEARER_SECURITY,
        consumes: ['application/pkcs7-mime'],
        params: ItemParams,
        body: Type.Any({ description: 'CMS EnvelopedData, DER (application/pkcs7-mime)' }),
        response: { 200: ExportResult, ...errors(404, 409, 413, 415, 422) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const body = request.body;
      if (!Buffer.isBuffer(body)) throw new Problem(commonProblems.UNSUPPORTED_MEDIA_TYPE, 'Send the CMS bytes as application/pkcs7-mime');
      const cms = body;
      const r = await receiveExport(ctx(), clientOf(request).org, id, cms, { maxBytes: config.MESSAGE_MAX_BYTES, now: deps.clock?.() ?? new Date() });
      request.log.info({ exportId: id, state: r.state }, 'move export received');
      return r;
    },
  );

  app.post(
    '/v1/moves/exports/:id/missing',
    {
      onRequest: requireClient(SCOPES.provider),
      schema: {
        tags: ['moves'],
        summary: 'Report that you no longer have this letter (the citizen deleted it)',
        security: BEARER_SECURITY,
        params: ItemParams,
        body: Type.Object({ reason: Type.Union([Type.Literal('DELETED_BY_CITIZEN'), Type.Literal('NOT_FOUND')]) }, { additionalProperties: false }),
        response: { 200: ExportResult, ...errors(404, 409) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const { reason } = request.body as { reason: string };
      return reportMissing(ctx(), clientOf(request).org, id, reason, deps.clock?.() ?? new Date());
    },
  );

  app.get(
    '/v1/admin/moves',
    {
      onRequest: requireClient(SCOPES.admin),
      schema: {
        tags: ['moves'],
        summary: 'Operators: moves and their progress, newest first (no personIds)',
        security: BEARER_SECURITY,
        querystring: Type.Object({ state: Type.Optional(MoveStateSchema), limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            moves: Type.Array(Type.Object(MoveSummary)),
          }),
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query as { state?: MoveState; limit: number };
      const rows = await operatorMoves(deps.db.kysely, q);
      return { moves: rows.map((m) => ({ ...m, createdAt: m.createdAt.toISOString(), deadlineAt: m.deadlineAt.toISOString(), finishedAt: iso(m.finishedAt) })) };
    },
  );
};

export default moves;
