import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { Problem } from '../../../shared/errors/problem.js';
import { isValidPersonId } from '../../../shared/ids/person-id.js';
import { requireActiveSender } from '../intake.js';
import { ingestionProblems } from '../problems.js';
import { capabilities } from '../routing.js';
import type { IngestionRouteOptions } from './context.js';
import { errors, Orgnr } from './schemas.js';

const ProviderRef = Type.Union([Type.Object({ orgnr: Orgnr, name: Type.String() }), Type.Null()]);

export const CapabilitiesResponse = Type.Object({
  status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('DELETED'), Type.Literal('NOT_REGISTERED')]),
  reserved: Type.Boolean(),
  canNotify: Type.Boolean({ description: 'An alert can reach the person (18-month rule); no contact data is given' }),
  digital: Type.Object({
    possible: Type.Boolean(),
    provider: ProviderRef,
    mailboxAddress: Type.Union([Type.String(), Type.Null()]),
    securityLevels: Type.Array(Type.Integer()),
  }),
  print: Type.Object({ possible: Type.Boolean(), provider: ProviderRef }),
});

const capabilitiesRoutes: FastifyPluginAsync<IngestionRouteOptions> = async (app, { deps }) => {
  app.get(
    '/v1/capabilities/:personId',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Can this person get digital mail now, or print?',
        description: 'DESIGN flow 1: the route a letter would take now. Never returns contact points or certificates.',
        tags: ['capabilities'],
        security: BEARER_SECURITY,
        params: Type.Object({ personId: Type.String({ maxLength: 64 }) }),
        response: { 200: CapabilitiesResponse, ...errors() },
      },
    },
    async (request) => {
      const { personId } = request.params as { personId: string };
      const client = clientOf(request);
      await requireActiveSender(deps, client.org);
      if (!isValidPersonId(personId)) throw new Problem(ingestionProblems.INVALID_PERSON_ID, 'The personId is not a valid fødselsnummer or D-number');
      return capabilities(deps.db.kysely, personId, deps.clock?.() ?? new Date());
    },
  );
};

export default capabilitiesRoutes;
