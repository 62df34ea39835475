import { Type } from 'typebox';
import { EXAMPLE } from '../../../shared/app/example-values.js';
import { ProblemSchema, errors, DateTime, Orgnr, Language } from '../../../shared/app/schemas.js';

export const NullableDateTime = Type.Union([DateTime, Type.Null()]);
export const PersonIdString = Type.String({ maxLength: 64, description: 'fødselsnummer or D-number (11 digits)', examples: [EXAMPLE.personId] });
export const Id = Type.String({ pattern: '^[0-9]{1,18}$', maxLength: 18 });
export const CertificateInput = Type.String({ minLength: 1, maxLength: 16_384, description: 'X.509 certificate: PEM, or base64 of the DER' });

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

export { ProblemSchema, errors, DateTime, Orgnr, Language };
