import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { cleanPurpose } from '../audit.js';
import { certificateEncoder, krrAccess, lookup, nativeAccess, toKrr, toNative } from '../lookup.js';
import { DateTime, errors, NullableDateTime, Orgnr, PersonIdString } from './schemas.js';

const PurposeHeaders = Type.Object({
  'x-purpose': Type.Optional(Type.String({ maxLength: 1000, description: 'Why the lookup is made; stored in the lookup audit (at most 200 characters kept)' })),
});

const NativeContact = Type.Object({ address: Type.String(), updatedAt: DateTime, verifiedAt: NullableDateTime, usable: Type.Boolean({ description: 'passes the 18-month rule' }) });

const NativePerson = Type.Object({
  personId: Type.String(),
  status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('DELETED'), Type.Literal('NOT_REGISTERED')]),
  reserved: Type.Boolean(),
  canNotify: Type.Boolean(),
  language: Type.Optional(Type.Union([Type.String({ description: 'nb, nn, en or se' }), Type.Null()])),
  email: Type.Optional(NativeContact),
  mobile: Type.Optional(NativeContact),
  mailbox: Type.Optional(Type.Object({ providerOrgnr: Orgnr, providerName: Type.String(), address: Type.String() })),
  certificate: Type.Optional(Type.String({ description: 'base64 DER: the mailbox\'s own certificate, else the provider\'s' })),
});

const KrrPerson = Type.Object({
  personidentifikator: Type.String(),
  reservasjon: Type.Union([Type.Literal('JA'), Type.Literal('NEI')]),
  status: Type.Union([Type.Literal('AKTIV'), Type.Literal('SLETTET'), Type.Literal('IKKE_REGISTRERT')]),
  varslingsstatus: Type.Union([Type.Literal('KAN_VARSLES'), Type.Literal('KAN_IKKE_VARSLES')]),
  kontaktinformasjon: Type.Optional(
    Type.Object({
      epostadresse: Type.Optional(Type.String()),
      epostadresse_oppdatert: Type.Optional(DateTime),
      epostadresse_sist_verifisert: Type.Optional(DateTime),
      mobiltelefonnummer: Type.Optional(Type.String()),
      mobiltelefonnummer_oppdatert: Type.Optional(DateTime),
      mobiltelefonnummer_sist_verifisert: Type.Optional(DateTime),
    }),
  ),
  digital_post: Type.Optional(Type.Object({ postkasseadresse: Type.String(), postkasseleverandoeradresse: Type.String() })),
  sertifikat: Type.Optional(Type.String({ description: 'base64 DER X.509' })),
  spraak: Type.Optional(Type.String()),
  spraak_oppdatert: Type.Optional(DateTime),
});

const KrrBody = Type.Object(
  { personidentifikatorer: Type.Array(PersonIdString, { minItems: 1, maxItems: 1000 }) },
  { additionalProperties: false },
);

/** Agency lookups: our own API and the KRR-compatible one. */
const lookupRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const db = deps.db.kysely;
  const now = () => deps.clock?.() ?? new Date();

  app.post(
    '/v1/persons/lookup',
    {
      onRequest: requireClient(SCOPES.lookup, SCOPES.lookupContact, SCOPES.lookupDigitalPost),
      schema: {
        summary: 'Look up 1..1000 persons',
        description:
          'Status, reservation and canNotify always; contact points with postbud:lookup.contact; mailbox and certificate with postbud:lookup.digitalpost. Unknown valid ids are NOT_REGISTERED; any invalid id gives 400 naming them.',
        tags: ['lookup'],
        security: BEARER_SECURITY,
        headers: PurposeHeaders,
        body: Type.Object({ personIds: Type.Array(PersonIdString, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ persons: Type.Array(NativePerson) }), ...errors() },
      },
    },
    async (request) => {
      const client = clientOf(request);
      const access = nativeAccess(client);
      const found = await lookup(db, client, 'v1', request.body.personIds, access, cleanPurpose(request.headers['x-purpose']), now());
      const encode = certificateEncoder();
      return { persons: found.map((r) => toNative(r, access, encode)) };
    },
  );

  for (const version of ['v1', 'v2'] as const) {
    app.post(
      `/rest/${version}/personer`,
      {
        onRequest: requireClient(SCOPES.lookup, SCOPES.lookupContact, SCOPES.lookupDigitalPost, SCOPES.krrContact, SCOPES.krrDigitalPost),
        schema: {
          summary: `KRR-compatible lookup (oppslagstjenesten REST ${version})`,
          description:
            "KRR's request and response shape, field names and enums. Reservation always; kontaktinformasjon and spraak with krr:global/kontaktinformasjon.read (or postbud:lookup.contact); digital_post and sertifikat with krr:global/digitalpost.read (or postbud:lookup.digitalpost). Outdated contact info (18-month rule) hides contact, mailbox and certificate.",
          tags: ['krr'],
          security: BEARER_SECURITY,
          headers: PurposeHeaders,
          body: KrrBody,
          response: { 200: Type.Object({ personer: Type.Array(KrrPerson) }), ...errors() },
        },
      },
      async (request) => {
        const client = clientOf(request);
        const access = krrAccess(client);
        const found = await lookup(db, client, version === 'v1' ? 'krr-v1' : 'krr-v2', request.body.personidentifikatorer, access, cleanPurpose(request.headers['x-purpose']), now());
        const encode = certificateEncoder();
        return { personer: found.map((r) => toKrr(r, access, encode)) };
      },
    );
  }
};

export default lookupRoutes;
