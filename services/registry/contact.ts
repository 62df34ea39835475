import { Problem } from '../../shared/errors/problem.js';
import { registryProblems } from './problems.js';

export type ContactKind = 'email' | 'mobile';

const EMAIL = /^[^\s@]{1,64}@[^\s@]+\.[^\s@.]{2,}$/;

/** Trimmed e-mail address, or 400. */
export function normaliseEmail(raw: string): string {
  const v = raw.trim();
  if (v.length > 254 || !EMAIL.test(v)) throw new Problem(registryProblems.INVALID_CONTACT, 'Not a valid e-mail address', { field: 'email' });
  return v;
}

/**
 * A mobile number in E.164 form: 8 Norwegian digits get +47; "00" becomes "+". Norwegian mobile
 * numbers start with 4 or 9.
 */
export function normaliseMobile(raw: string): string {
  let v = raw.replace(/[\s().-]/g, '');
  if (v.startsWith('00')) v = `+${v.slice(2)}`;
  if (/^\d{8}$/.test(v)) v = `+47${v}`;
  if (!/^\+\d{8,15}$/.test(v) || (v.startsWith('+47') && !/^\+47[49]\d{7}$/.test(v))) {
    throw new Problem(registryProblems.INVALID_CONTACT, 'Not a valid mobile number (8 digits, or + and country code)', { field: 'mobile' });
  }
  return v;
}

export const normaliseContact = (kind: ContactKind, raw: string): string => (kind === 'email' ? normaliseEmail(raw) : normaliseMobile(raw));
