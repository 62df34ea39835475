import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { EXAMPLE } from '../../../shared/app/example-values.js';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { Problem } from '../../../shared/errors/problem.js';
import { queryAudit } from '../audit.js';
import { importPersons, parseImport } from '../import.js';
import { createProvider, createSender, listProviders, listSenders, updateProvider, updateSender, type ProviderView, type SenderView } from '../onboarding.js';
import { registryProblems } from '../problems.js';
import { CertificateInput, DateTime, errors, Id, Orgnr } from './schemas.js';

const Name = Type.String({ minLength: 1, maxLength: 200 });
const Status = Type.Union([Type.Literal('active'), Type.Literal('suspended')]);
const Kind = Type.Union([Type.Literal('digital'), Type.Literal('print')]);

const SenderSchema = Type.Object({ orgnr: Orgnr, name: Type.String(), status: Status, createdAt: DateTime, updatedAt: DateTime });
const ProviderSchema = Type.Object({
  orgnr: Orgnr,
  name: Type.String(),
  kind: Kind,
  status: Status,
  certificate: Type.Union([Type.String({ description: 'base64 DER' }), Type.Null()]),
  createdAt: DateTime,
  updatedAt: DateTime,
});

const senderJson = (s: SenderView) => ({ ...s, createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString() });
const providerJson = (p: ProviderView) => ({ ...p, createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString() });

const NDJSON = ['application/x-ndjson', 'application/jsonl', 'application/jsonlines'];
const IMPORT_LIMIT = 256 * 1024 * 1024;

/** Operators (postbud:admin): onboarding, bulk import, lookup audit. */
const adminRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const db = deps.db.kysely;
  const now = () => deps.clock?.() ?? new Date();
  const guard = requireClient(SCOPES.admin);
  const tags = ['admin'];

  app.addContentTypeParser(NDJSON, { parseAs: 'string', bodyLimit: IMPORT_LIMIT }, (_request, body, done) => done(null, body));

  app.get('/v1/admin/senders', { onRequest: guard, schema: { summary: 'All senders', tags, security: BEARER_SECURITY, response: { 200: Type.Object({ senders: Type.Array(SenderSchema) }), ...errors() } } }, async () => ({
    senders: (await listSenders(db)).map(senderJson),
  }));

  app.post(
    '/v1/admin/senders',
    {
      onRequest: guard,
      schema: { summary: 'Onboard a sender', tags, security: BEARER_SECURITY, body: Type.Object({ orgnr: Type.String({ minLength: 1, maxLength: 20 }), name: Name }, { additionalProperties: false, examples: [{ orgnr: '822010571', name: 'Eksempel kommune' }] }), response: { 201: SenderSchema, ...errors(409) } },
    },
    async (request, reply) => reply.code(201).send(senderJson(await createSender(db, request.body, now()))),
  );

  app.patch(
    '/v1/admin/senders/:orgnr',
    {
      onRequest: guard,
      schema: {
        summary: 'Rename, suspend or reactivate a sender',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ orgnr: Orgnr }),
        body: Type.Object({ name: Type.Optional(Name), status: Type.Optional(Status) }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: SenderSchema, ...errors(404) },
      },
    },
    async (request) => senderJson(await updateSender(db, request.params.orgnr, request.body, now())),
  );

  app.get('/v1/admin/providers', { onRequest: guard, schema: { summary: 'All providers', tags, security: BEARER_SECURITY, response: { 200: Type.Object({ providers: Type.Array(ProviderSchema) }), ...errors() } } }, async () => ({
    providers: (await listProviders(db)).map(providerJson),
  }));

  app.post(
    '/v1/admin/providers',
    {
      onRequest: guard,
      schema: {
        summary: 'Onboard a mailbox or print provider',
        description: 'A digital provider needs an encryption certificate: X.509, RSA >= 2048 bits, valid now, key usage allowing keyEncipherment.',
        tags,
        security: BEARER_SECURITY,
        body: Type.Object(
          { orgnr: Type.String({ minLength: 1, maxLength: 20 }), name: Name, kind: Kind, certificate: Type.Optional(CertificateInput) },
          { additionalProperties: false, examples: [{ orgnr: '913560302', name: 'Eksempel print AS', kind: 'print' }] },
        ),
        response: { 201: ProviderSchema, ...errors(409) },
      },
    },
    async (request, reply) => reply.code(201).send(providerJson(await createProvider(db, request.body, now()))),
  );

  app.patch(
    '/v1/admin/providers/:orgnr',
    {
      onRequest: guard,
      schema: {
        summary: 'Rename, suspend or reactivate a provider',
        description: 'A suspended provider\'s mailboxes are not offered in lookups; its persons enter the change feed.',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ orgnr: Type.String({ ...Orgnr, examples: [EXAMPLE.providerOrgnr] }) }),
        body: Type.Object({ name: Type.Optional(Name), status: Type.Optional(Status) }, { additionalProperties: false, minProperties: 1, examples: [{ name: 'Digipost', status: 'active' }] }),
        response: { 200: ProviderSchema, ...errors(404) },
      },
    },
    async (request) => providerJson(await updateProvider(db, request.params.orgnr, request.body, now())),
  );

  app.post(
    '/v1/admin/persons/import',
    {
      onRequest: guard,
      bodyLimit: IMPORT_LIMIT,
      schema: {
        summary: 'Bulk import of persons as JSON lines',
        description:
          'Content-Type application/x-ndjson; one object per line: {personId, status?, reserved?, reservedAt?, language?, languageUpdatedAt?, email?, emailUpdatedAt?, emailVerifiedAt?, mobile?, mobileUpdatedAt?, mobileVerifiedAt?, mailbox?: {providerOrgnr, address}}. Absent fields keep their value. All or nothing: any invalid line gives 400 listing the line numbers and nothing is written.',
        tags,
        security: BEARER_SECURITY,
        consumes: NDJSON,
        body: Type.String({
          description: 'JSON lines',
          maxLength: IMPORT_LIMIT,
          examples: [
            `${JSON.stringify({ personId: EXAMPLE.personId, language: 'nb', email: 'ola.nordmann@example.com', emailUpdatedAt: '2026-01-15T09:30:00.000Z', mailbox: { providerOrgnr: EXAMPLE.providerOrgnr, address: EXAMPLE.mailboxAddress } })}\n`,
          ],
        }),
        response: {
          200: Type.Object({ received: Type.Integer(), created: Type.Integer(), updated: Type.Integer(), unchanged: Type.Integer(), mailboxesActivated: Type.Integer() }),
          ...errors(413, 415),
        },
      },
    },
    async (request) => {
      const { records, lines } = parseImport(request.body);
      if (records.length === 0) throw new Problem(registryProblems.INVALID_IMPORT, 'The import has no records', { errors: [] });
      return importPersons(db, records, now(), 'import', lines);
    },
  );

  app.get(
    '/v1/admin/lookups',
    {
      onRequest: guard,
      schema: {
        summary: 'The lookup audit, newest first',
        tags,
        security: BEARER_SECURITY,
        querystring: Type.Object(
          {
            org: Type.Optional(Orgnr),
            from: Type.Optional(DateTime),
            to: Type.Optional(DateTime),
            before: Type.Optional(Id),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            lookups: Type.Array(
              Type.Object({
                id: Type.String(),
                consumerOrg: Type.String(),
                clientId: Type.Union([Type.String(), Type.Null()]),
                api: Type.String(),
                personCount: Type.Integer(),
                purpose: Type.Union([Type.String(), Type.Null()]),
                scopes: Type.String(),
                lookedUpAt: DateTime,
              }),
            ),
            nextBefore: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const date = (v: string | undefined, name: string) => {
        if (v === undefined) return undefined;
        const d = new Date(v);
        if (Number.isNaN(d.getTime())) throw new Problem(registryProblems.INVALID_TIME, `${name} is not a valid date-time`);
        return d;
      };
      const rows = await queryAudit(db, { org: q.org, from: date(q.from, 'from'), to: date(q.to, 'to'), before: q.before, limit: q.limit });
      return {
        lookups: rows.map((r) => ({ ...r, lookedUpAt: r.lookedUpAt.toISOString() })),
        nextBefore: rows.length === q.limit ? rows[rows.length - 1]!.id : null,
      };
    },
  );
};

export default adminRoutes;
