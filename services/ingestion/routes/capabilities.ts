import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { cleanPurpose } from '../../../shared/registry/lookup-audit.js';
import { capabilitiesFor } from '../capabilities.js';
import { requireActiveSender } from '../intake.js';
import type { IngestionRouteOptions } from './context.js';
import { errors, Orgnr, PersonIdInput } from './schemas.js';

const ProviderRef = Type.Union([Type.Object({ orgnr: Orgnr, name: Type.String() }), Type.Null()]);
const Status = (values: string[], description: string) => Type.Union([...values.map((v) => Type.Literal(v)), Type.Null()], { description });

export const CapabilitiesResponse = Type.Object({
  status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('DELETED'), Type.Literal('NOT_REGISTERED')]),
  reserved: Type.Boolean(),
  canNotify: Type.Boolean({ description: 'An alert can reach the person (18-month rule); no contact data is given' }),
  reason: Status(
    ['NOT_REGISTERED', 'DELETED', 'RESERVED', 'NO_MAILBOX', 'CONTACT_OUTDATED', 'NO_CONTACT_INFO'],
    'The first that applies: why digital mail is not possible, else why the hub cannot alert the person; null when digital mail with alerts is possible',
  ),
  canNotifyReason: Status(['NOT_REGISTERED', 'DELETED', 'RESERVED', 'CONTACT_OUTDATED', 'NO_CONTACT_INFO'], 'Why canNotify is false; null when it is true'),
  digital: Type.Object({
    possible: Type.Boolean(),
    reason: Status(['NOT_REGISTERED', 'DELETED', 'RESERVED', 'NO_MAILBOX'], 'Why digital mail is not possible; null when it is'),
    provider: Type.Union([Type.Object({ orgnr: Orgnr, name: Type.String() }), Type.Null()], { description: 'The mailbox provider; only with postbud:lookup.digitalpost, else null' }),
    mailboxAddress: Type.Union([Type.String(), Type.Null()], { description: 'The mailbox address; only with postbud:lookup.digitalpost, else null' }),
    securityLevels: Type.Array(Type.Integer()),
  }),
  print: Type.Object({
    possible: Type.Boolean(),
    reason: Status(['NOT_REGISTERED', 'DELETED', 'PRINT_UNAVAILABLE'], 'Why print is not possible; null when it is'),
    provider: ProviderRef,
  }),
});

const capabilitiesRoutes: FastifyPluginAsync<IngestionRouteOptions> = async (app, { deps }) => {
  app.get(
    '/v1/capabilities/:personId',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Can this person get digital mail now, or print?',
        description:
          'DESIGN flow 1: the route a letter would take now, with reason codes. Never returns contact points or certificates; the mailbox (provider and address) only with postbud:lookup.digitalpost, as in the registry lookup. Every answer is written to the lookup audit (org, client, scopes, API `capabilities`, X-Purpose), never which person.',
        tags: ['capabilities'],
        security: BEARER_SECURITY,
        params: Type.Object({ personId: PersonIdInput }),
        headers: Type.Object({
          'x-purpose': Type.Optional(Type.String({ maxLength: 1000, description: 'Why the lookup is made; stored in the lookup audit (at most 200 characters kept)' })),
        }),
        response: { 200: CapabilitiesResponse, ...errors() },
      },
    },
    async (request) => {
      const { personId } = request.params as { personId: string };
      const client = clientOf(request);
      await requireActiveSender(deps, client.org);
      const purpose = cleanPurpose(request.headers['x-purpose'] as string | undefined);
      return capabilitiesFor(deps.db.kysely, client, personId, { api: 'capabilities', purpose, now: deps.clock?.() ?? new Date() });
    },
  );
};

export default capabilitiesRoutes;
