import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { EXAMPLE } from '../../../shared/app/example-values.js';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { Problem } from '../../../shared/errors/problem.js';
import { isValidPersonId } from '../../../shared/ids/person-id.js';
import { registryProblems } from '../problems.js';
import { closeMailbox, refuseSuspendedProvider, getMailbox, registerMailbox, rotateProviderCertificate, updateMailbox, type MailboxView } from '../provider-mailboxes.js';
import { CertificateInput, DateTime, errors, Id, iso, NullableDateTime, PersonIdString } from './schemas.js';

const MailboxSchema = Type.Object({
  id: Type.String(),
  personId: Type.String(),
  address: Type.String(),
  hasOwnCertificate: Type.Boolean(),
  active: Type.Boolean({ description: 'the person\'s mailbox for public mail' }),
  createdAt: DateTime,
  updatedAt: DateTime,
  closedAt: NullableDateTime,
});

const mailboxJson = (m: MailboxView) => ({ ...m, createdAt: m.createdAt.toISOString(), updatedAt: m.updatedAt.toISOString(), closedAt: iso(m.closedAt) });

const Address = Type.String({ minLength: 1, maxLength: 200, pattern: '^\\S(.*\\S)?$', description: 'the provider\'s address of the mailbox, e.g. ola.nordmann#9YDT' });

/** Mailbox providers (postbud:provider; the token's org is the provider, and only its own mailboxes exist for it). */
const providerRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const db = deps.db.kysely;
  const now = () => deps.clock?.() ?? new Date();
  // Every provider route, reads included, refuses a suspended provider (the storage API does the same).
  const guard = [requireClient(SCOPES.provider), refuseSuspendedProvider(db)];
  const tags = ['provider'];

  app.post(
    '/v1/provider/mailboxes',
    {
      onRequest: guard,
      schema: {
        summary: 'Register a mailbox a citizen created with you',
        description: 'Becomes the person\'s active mailbox if they have none. Registering the same address for the same person again returns it (200).',
        tags,
        security: BEARER_SECURITY,
        body: Type.Object(
          { personId: PersonIdString, address: Address, certificate: Type.Optional(CertificateInput) },
          { additionalProperties: false, examples: [{ personId: EXAMPLE.personId, address: EXAMPLE.mailboxAddress }] },
        ),
        response: { 200: MailboxSchema, 201: MailboxSchema, ...errors(409) },
      },
    },
    async (request, reply) => {
      const { personId, address, certificate } = request.body;
      if (!isValidPersonId(personId)) throw new Problem(registryProblems.INVALID_PERSON_ID, 'personId is not a valid fødselsnummer or D-number', { invalidPersonIds: [personId] });
      const { mailbox, created } = await registerMailbox(db, clientOf(request).org, { personId, address, certificate }, now());
      return reply.code(created ? 201 : 200).send(mailboxJson(mailbox));
    },
  );

  const params = Type.Object({ id: Id });

  app.get(
    '/v1/provider/mailboxes/:id',
    { onRequest: guard, schema: { summary: 'One of your mailboxes', tags, security: BEARER_SECURITY, params, response: { 200: MailboxSchema, ...errors(404) } } },
    async (request) => mailboxJson(await getMailbox(db, clientOf(request).org, request.params.id)),
  );

  app.patch(
    '/v1/provider/mailboxes/:id',
    {
      onRequest: guard,
      schema: {
        summary: 'Change a mailbox\'s address or own certificate',
        description: 'certificate: null removes the mailbox\'s own certificate (the provider\'s is used).',
        tags,
        security: BEARER_SECURITY,
        params,
        body: Type.Object(
          { address: Type.Optional(Address), certificate: Type.Optional(Type.Union([CertificateInput, Type.Null()])) },
          { additionalProperties: false, minProperties: 1, examples: [{ address: EXAMPLE.mailboxAddress }] },
        ),
        response: { 200: MailboxSchema, ...errors(404, 409) },
      },
    },
    async (request) => mailboxJson(await updateMailbox(db, clientOf(request).org, request.params.id, request.body, now())),
  );

  app.post(
    '/v1/provider/mailboxes/:id/close',
    {
      onRequest: guard,
      schema: {
        summary: 'Close a mailbox (the account is gone)',
        description: 'If it was the person\'s active mailbox they have none until they choose another; pending letters are re-addressed.',
        tags,
        security: BEARER_SECURITY,
        params,
        response: { 200: MailboxSchema, ...errors(404) },
      },
    },
    async (request) => mailboxJson(await closeMailbox(db, clientOf(request).org, request.params.id, now())),
  );

  app.put(
    '/v1/provider/certificate',
    {
      onRequest: guard,
      schema: {
        summary: 'Rotate your encryption certificate',
        description: 'Checked like at registration (X.509, RSA >= 2048 bits, valid now, keyEncipherment). Persons whose mailbox has no own certificate enter the change feed.',
        tags,
        security: BEARER_SECURITY,
        body: Type.Object({ certificate: CertificateInput }, { additionalProperties: false }),
        response: { 200: Type.Object({ affectedPersons: Type.Integer() }), ...errors() },
      },
    },
    async (request) => rotateProviderCertificate(db, clientOf(request).org, request.body.certificate, now()),
  );
};

export default providerRoutes;
