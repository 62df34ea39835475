import { Type } from 'typebox';

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
  { additionalProperties: true, description: 'RFC 9457 problem details (application/problem+json)' },
);

/** The error responses a guarded route can give, plus any extra status codes. */
export const errors = (...extra: number[]) => {
  const out: Record<number, typeof ProblemSchema> = { 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema };
  for (const code of extra) out[code] = ProblemSchema;
  return out;
};

export const DateTime = Type.String({ format: 'date-time' });
export const Uuid = Type.String({ format: 'uuid' });
export const Orgnr = Type.String({ pattern: '^[0-9]{9}$', description: 'organisation number (9 digits, mod-11)' });
export const Language = Type.Union([Type.Literal('nb'), Type.Literal('nn'), Type.Literal('en'), Type.Literal('se')]);
