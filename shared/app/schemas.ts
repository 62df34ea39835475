import { Type } from 'typebox';
import { EXAMPLE } from './example-values.js';

/** RFC 9457 problem details as every error response carries them (extensions allowed). */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    code: Type.String(),
  },
  { additionalProperties: true, title: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' },
);

/** The error responses a guarded route can give, plus any extra status codes. */
export const errors = (...extra: number[]) => {
  const out: Record<number, typeof ProblemSchema> = { 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema };
  for (const code of extra) out[code] = ProblemSchema;
  return out;
};

export const DateTime = Type.String({ format: 'date-time', maxLength: 40 });
export const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
export const Orgnr = Type.String({ pattern: '^[0-9]{9}$', maxLength: 9, description: 'organisation number (9 digits, mod-11)', examples: [EXAMPLE.senderOrgnr] });
export const Language = Type.Union([Type.Literal('nb'), Type.Literal('nn'), Type.Literal('en'), Type.Literal('se')]);

/** A personId as requests carry it; checked against the fødselsnummer/D-number rules by the route. */
export const PersonIdInput = Type.String({ minLength: 1, maxLength: 64, description: 'fødselsnummer or D-number (11 digits)', examples: [EXAMPLE.personId] });
