import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { notificationContext } from '../context.js';
import { INVITATION_RESULTS, invite } from '../invitations.js';
import { errors, PersonIdInput } from '../../../shared/app/schemas.js';

const Body = Type.Object(
  {
    personIds: Type.Array(PersonIdInput, { minItems: 1, maxItems: 1000 }),
  },
  { additionalProperties: false },
);

const Result = Type.Object({
  personId: Type.String(),
  result: Type.Enum(INVITATION_RESULTS, {
    description:
      'INVITED: an e-mail goes out in the daytime window. RECENTLY_INVITED: invited within INVITATION_COOLDOWN_DAYS. ' +
      'HAS_MAILBOX, RESERVED, NOT_REGISTERED, DELETED: not invited. NO_EMAIL / EMAIL_EXPIRED: no e-mail address passing the 18-month rule.',
  }),
});

/** Agencies (postbud:send) invite persons without a mailbox to choose one. */
const invitationRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const ctx = notificationContext(deps);
  app.post(
    '/v1/invitations',
    {
      onRequest: requireClient(SCOPES.send),
      config: { rateLimit: { max: deps.config.INVITATIONS_PER_MINUTE, timeWindow: 60_000 } },
      schema: {
        summary: 'Invite persons without a digital mailbox to choose one',
        description:
          'The hub e-mails each person who has no mailbox and is not reserved, at the registry address if it passes the 18-month rule. One result per personId, in order.',
        tags: ['invitations'],
        security: BEARER_SECURITY,
        body: Body,
        response: { 200: Type.Object({ results: Type.Array(Result) }), ...errors(429) },
      },
    },
    async (request) => ({ results: await invite(ctx, clientOf(request).org, request.body.personIds) }),
  );
};

export default invitationRoutes;
