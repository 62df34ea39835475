import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, citizenOf, requireCitizen } from '../../../shared/auth/guards.js';
import { Problem } from '../../../shared/errors/problem.js';
import { isValidPersonId } from '../../../shared/ids/person-id.js';
import type { ContactKind } from '../contact.js';
import { registryProblems } from '../problems.js';
import { chooseMailbox, confirmContact, ownRecord, removeContact, setContact, setLanguage, setReservation, type OwnContact, type OwnRecord } from '../self-service.js';
import { DateTime, errors, Id, iso, Language, NullableDateTime, Orgnr } from './schemas.js';

const MIN_ACR = 'idporten-loa-substantial';

const OwnContactSchema = Type.Union([
  Type.Object({ address: Type.String(), updatedAt: DateTime, verifiedAt: NullableDateTime, usable: Type.Boolean({ description: 'passes the 18-month rule' }) }),
  Type.Null(),
]);

const OwnRecordSchema = Type.Object({
  personId: Type.String(),
  status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('DELETED'), Type.Literal('NOT_REGISTERED')]),
  reserved: Type.Boolean(),
  reservedAt: NullableDateTime,
  language: Type.Union([Language, Type.Null()]),
  languageUpdatedAt: NullableDateTime,
  email: OwnContactSchema,
  mobile: OwnContactSchema,
  canNotify: Type.Boolean(),
  mailboxes: Type.Array(
    Type.Object({
      id: Type.String(),
      providerOrgnr: Orgnr,
      providerName: Type.String(),
      address: Type.String(),
      active: Type.Boolean(),
      closedAt: NullableDateTime,
      selectable: Type.Boolean(),
    }),
  ),
});

const contactJson = (c: OwnContact | null) => (c ? { address: c.address, updatedAt: c.updatedAt.toISOString(), verifiedAt: iso(c.verifiedAt), usable: c.usable } : null);

const recordJson = (r: OwnRecord) => ({
  personId: r.personId,
  status: r.status,
  reserved: r.reserved,
  reservedAt: iso(r.reservedAt),
  language: r.language as 'nb' | 'nn' | 'en' | 'se' | null,
  languageUpdatedAt: iso(r.languageUpdatedAt),
  email: contactJson(r.email),
  mobile: contactJson(r.mobile),
  canNotify: r.canNotify,
  mailboxes: r.mailboxes.map((m) => ({ ...m, closedAt: iso(m.closedAt) })),
});

/** Citizen self-service on one's own record (ID-porten token; changes need acr substantial or high). */
const citizenRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const db = deps.db.kysely;
  const now = () => deps.clock?.() ?? new Date();
  const pidOf = (request: FastifyRequest): string => {
    const pid = citizenOf(request).pid;
    if (!isValidPersonId(pid)) throw new Problem(registryProblems.INVALID_PERSON_ID, 'The token\'s pid is not a valid fødselsnummer or D-number');
    return pid;
  };
  const read = { onRequest: requireCitizen(), security: BEARER_SECURITY };
  const write = { onRequest: requireCitizen(MIN_ACR) };
  const answer = { 200: OwnRecordSchema, ...errors() };
  const tags = ['citizen'];

  app.get('/v1/me', { onRequest: read.onRequest, schema: { summary: 'Your own record', tags, security: BEARER_SECURITY, response: answer } }, async (request) =>
    recordJson(await ownRecord(db, pidOf(request), now())),
  );

  const contacts: { kind: ContactKind; path: string; field: 'address' | 'number'; label: string; example: string }[] = [
    { kind: 'email', path: 'email', field: 'address', label: 'e-mail address', example: 'ola.nordmann@example.com' },
    { kind: 'mobile', path: 'mobile', field: 'number', label: 'mobile number', example: '+4791234567' },
  ];
  for (const c of contacts) {
    app.put(
      `/v1/me/${c.path}`,
      {
        ...write,
        schema: {
          summary: `Set your ${c.label}`,
          description: 'Updated now; not verified until confirmed.',
          tags,
          security: BEARER_SECURITY,
          body: Type.Object({ [c.field]: Type.String({ minLength: 1, maxLength: 254 }) }, { additionalProperties: false, examples: [{ [c.field]: c.example }] }),
          response: errorsWith(answer, 409),
        },
      },
      async (request) => {
        const pid = pidOf(request);
        await setContact(db, pid, c.kind, (request.body as Record<string, string>)[c.field]!, now());
        return recordJson(await ownRecord(db, pid, now()));
      },
    );
    app.post(
      `/v1/me/${c.path}/confirm`,
      { ...write, schema: { summary: `Confirm your ${c.label} is still right`, description: 'Sets its verifiedAt to now (KRR\'s "sist verifisert").', tags, security: BEARER_SECURITY, response: errorsWith(answer, 409) } },
      async (request) => {
        const pid = pidOf(request);
        await confirmContact(db, pid, c.kind, now());
        return recordJson(await ownRecord(db, pid, now()));
      },
    );
    app.delete(`/v1/me/${c.path}`, { ...write, schema: { summary: `Remove your ${c.label}`, tags, security: BEARER_SECURITY, response: errorsWith(answer, 409) } }, async (request) => {
      const pid = pidOf(request);
      await removeContact(db, pid, c.kind, now());
      return recordJson(await ownRecord(db, pid, now()));
    });
  }

  app.put(
    '/v1/me/reservation',
    {
      ...write,
      schema: {
        summary: 'Reserve against digital mail, or withdraw the reservation',
        tags,
        security: BEARER_SECURITY,
        body: Type.Object({ reserved: Type.Boolean() }, { additionalProperties: false }),
        response: errorsWith(answer, 409),
      },
    },
    async (request) => {
      const pid = pidOf(request);
      await setReservation(db, pid, request.body.reserved, now());
      return recordJson(await ownRecord(db, pid, now()));
    },
  );

  app.put(
    '/v1/me/language',
    {
      ...write,
      schema: { summary: 'Set your language', tags, security: BEARER_SECURITY, body: Type.Object({ language: Language }, { additionalProperties: false }), response: errorsWith(answer, 409) },
    },
    async (request) => {
      const pid = pidOf(request);
      await setLanguage(db, pid, request.body.language, now());
      return recordJson(await ownRecord(db, pid, now()));
    },
  );

  app.put(
    '/v1/me/mailbox',
    {
      ...write,
      schema: {
        summary: 'Choose your active mailbox for public mail',
        description: 'One of your open mailboxes (see GET /v1/me); the previous one stops receiving public mail.',
        tags,
        security: BEARER_SECURITY,
        body: Type.Object({ mailboxId: Id }, { additionalProperties: false }),
        response: errorsWith(answer, 404, 409),
      },
    },
    async (request) => {
      const pid = pidOf(request);
      await chooseMailbox(db, pid, request.body.mailboxId, now());
      return recordJson(await ownRecord(db, pid, now()));
    },
  );
};

function errorsWith<T extends object>(base: T, ...codes: number[]): T {
  return { ...base, ...errors(...codes) };
}

export default citizenRoutes;
