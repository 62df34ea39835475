import { Type } from 'typebox';
import { ProblemSchema, errors, DateTime, Uuid } from '../../../shared/app/schemas.js';

export const DeliveryParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const State = Type.Union(
  ['READY', 'DELIVERED', 'OPENED', 'PRINT_ACCEPTED', 'PRINTED', 'RETURNED', 'FAILED', 'CANCELLED', 'MOVED'].map((s) => Type.Literal(s)),
  {
    description:
      'READY until acknowledged; DELIVERED/PRINT_ACCEPTED on ack; then OPENED, PRINTED, RETURNED or FAILED. CANCELLED: withdrawn by the sender before ack. MOVED: exported to the hub when the citizen moved their mail',
  },
);

export const PrintInstructionsSchema = Type.Object(
  {
    recipient: Type.Object({}, { additionalProperties: true }),
    returnAddress: Type.Object({}, { additionalProperties: true }),
    color: Type.Union([Type.Literal('BW'), Type.Literal('COLOR')]),
    class: Type.Union([Type.Literal('A'), Type.Literal('B')]),
    returnHandling: Type.Union([Type.Literal('RETURN'), Type.Literal('SHRED')]),
  },
  { additionalProperties: true, description: 'Present on deliveries routed to print' },
);

export const DeliverySummary = Type.Object({
  id: Uuid,
  messageId: Uuid,
  route: Type.Union([Type.Literal('DIGITAL'), Type.Literal('PRINT')]),
  personId: Type.String({ description: 'The recipient (fødselsnummer or D-number)' }),
  mailboxAddress: Type.Union([Type.String(), Type.Null()], { description: 'The recipient mailbox at this provider; null for print' }),
  title: Type.String({ description: 'Non-sensitive title' }),
  securityLevel: Type.Union([Type.Literal(3), Type.Literal(4)]),
  availableAt: DateTime,
  print: Type.Optional(PrintInstructionsSchema),
  size: Type.Integer({ description: 'Exact byte length of the package download' }),
  fingerprint: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 (hex) of the exact CMS bytes of the package download; also its ETag' }),
  leasedUntil: DateTime,
  kind: Type.Union([Type.Literal('ORIGINAL'), Type.Literal('MOVED')], {
    description: 'MOVED: a letter delivered earlier to the citizen at another provider, moved here at their request (no alert, no new deadline; acknowledging it is MOVED_IN, not DELIVERED)',
  }),
  original: Type.Optional(
    Type.Object({
      senderOrgnr: Type.String({ pattern: '^[0-9]{9}$' }),
      deliveredAt: Type.Union([DateTime, Type.Null()], { description: 'When the first provider acknowledged it' }),
      openedAt: Type.Union([DateTime, Type.Null()], { description: 'When the citizen first opened it, where known' }),
    }, { description: 'On MOVED deliveries: the original delivery' }),
  ),
  routing: Type.String({
    description:
      'Where this delivery goes, signed by the hub: a compact JWS (ES256, typ postbud-routing+jws; verify with /.well-known/jwks.json) over {deliveryId, messageId, manifestSha256, route, providerOrgnr, mailboxAddress, print?, iat}. The package\'s signed manifest describes the letter, not its route (which re-addressing and the print fallback change); manifestSha256 binds this statement to the manifest.json inside the package.',
  }),
});

export const DeliveryList = Type.Object({
  deliveries: Type.Array(DeliverySummary),
  leaseSeconds: Type.Integer({ description: 'Acknowledge within this, or the deliveries are offered again' }),
});

export const DeliveryStatusSchema = Type.Object({
  id: Uuid,
  messageId: Uuid,
  state: State,
  ackedAt: Type.Union([DateTime, Type.Null()]),
});

export const AckBatchBody = Type.Object(
  { ids: Type.Array(Uuid, { minItems: 1, maxItems: 500, description: 'Delivery ids (as listed), at most 500' }) },
  { additionalProperties: false },
);

export const AckBatchResponse = Type.Object({
  results: Type.Array(
    Type.Object({
      id: Type.String(),
      ok: Type.Boolean(),
      delivery: Type.Optional(DeliveryStatusSchema),
      problem: Type.Optional(ProblemSchema),
    }),
    { description: 'One per requested id, in the order given' },
  ),
});

export const ProviderEventSchema = Type.Union(
  [
    Type.Object(
      { type: Type.Literal('OPENED'), at: DateTime, securityLevel: Type.Union([Type.Literal(3), Type.Literal(4)], { description: 'The level the citizen logged in with to open it' }) },
      { additionalProperties: false },
    ),
    Type.Object({ type: Type.Literal('FAILED'), reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
    Type.Object({ type: Type.Literal('PRINTED'), at: DateTime }, { additionalProperties: false }),
    Type.Object({ type: Type.Literal('RETURNED'), at: DateTime, reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
  ],
  { description: 'OPENED (digital), PRINTED and RETURNED (print), FAILED (either)' },
);

export { ProblemSchema, errors, DateTime, Uuid };
