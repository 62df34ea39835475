import { idnr } from '@navikt/fnrvalidator';

/**
 * personId: a fødselsnummer or D-number (11 digits: DDMMYY, a three-digit individual number,
 * two mod-11 check digits; a D-number adds 4 to the first digit).
 *
 * - Check digits are @navikt/fnrvalidator's (it knows the 2032 rule that lets the first check
 *   digit take four values). Neither it nor norsk-validator applies the individual-number ranges
 *   (fnrvalidator reads year 00 as 2000 and every other year as 19xx), so the century is derived
 *   here, from Skatteetaten's table: 000-499 -> 1900-1999; 500-749 with YY 54-99 -> 1854-1899;
 *   500-999 with YY 00-39 -> 2000-2039; 900-999 with YY 40-99 -> 1940-1999; any other
 *   combination is no person's number. The birth date must exist in that century (29.02.1900
 *   does not) and must not lie in the future.
 * - Synthetic test identities add 80 to the month (Skatteetaten's Test Norge / Tenor) or 40 (NAV's
 *   synthetic persons, the same shape as an H-number), also as D-numbers. They belong to no real
 *   person and are accepted only where synthetic ids are allowed (SYNTHETIC_PERSON_IDS: on by
 *   default outside production, off in production). H-numbers are never persons in the registry.
 */
export interface PersonIdPolicy {
  /** Accept synthetic test identities (month + 80 or + 40, also as D-numbers). */
  synthetic: boolean;
}

let processPolicy: PersonIdPolicy = { synthetic: false };

/** Sets the policy of this process; called once at start-up from the configuration. */
export function setPersonIdPolicy(policy: PersonIdPolicy): void {
  processPolicy = { ...policy };
}

export function personIdPolicy(): PersonIdPolicy {
  return processPolicy;
}

export type PersonIdKind = 'fnr' | 'dnr';

export interface DecodedPersonId {
  kind: PersonIdKind;
  /** A synthetic test identity (month + 80 or + 40). */
  synthetic: boolean;
  birthDate: Date;
  individual: number;
}

/** The century-qualified birth year, or undefined when the individual number has no range for YY. */
export function birthYear(yy: number, individual: number): number | undefined {
  if (individual <= 499) return 1900 + yy;
  if (individual <= 749 && yy >= 54) return 1800 + yy;
  if (yy <= 39) return 2000 + yy;
  if (individual >= 900) return 1900 + yy;
  return undefined;
}

/**
 * What an 11-digit id says, or undefined when it is not a valid fødselsnummer or D-number
 * (synthetic ones included: the caller decides whether to accept those).
 */
export function decodePersonId(value: unknown, now: Date = new Date()): DecodedPersonId | undefined {
  if (typeof value !== 'string' || !/^\d{11}$/.test(value)) return undefined;
  // Check digits only: fnrvalidator's date check does not know the century.
  const result = idnr(value);
  if (result.status !== 'valid' && !result.reasons.every((r) => r === 'invalid date')) return undefined;
  const d = [...value].map(Number);
  let day = d[0]! * 10 + d[1]!;
  let month = d[2]! * 10 + d[3]!;
  const dnr = day > 40;
  if (dnr) day -= 40;
  let synthetic = false;
  if (month > 80) {
    month -= 80;
    synthetic = true;
  } else if (month > 40) {
    month -= 40;
    synthetic = true;
  }
  const yy = d[4]! * 10 + d[5]!;
  const individual = d[6]! * 100 + d[7]! * 10 + d[8]!;
  const year = birthYear(yy, individual);
  if (year === undefined || day < 1 || day > 31 || month < 1 || month > 12) return undefined;
  const birthDate = new Date(Date.UTC(year, month - 1, day));
  if (birthDate.getUTCFullYear() !== year || birthDate.getUTCMonth() !== month - 1 || birthDate.getUTCDate() !== day) return undefined;
  if (birthDate.getTime() > now.getTime()) return undefined;
  return { kind: dnr ? 'dnr' : 'fnr', synthetic, birthDate, individual };
}

/** A valid personId under `policy` (by default this process's, set from SYNTHETIC_PERSON_IDS). */
export function isValidPersonId(value: unknown, policy: PersonIdPolicy = processPolicy, now?: Date): value is string {
  const decoded = decodePersonId(value, now);
  return decoded !== undefined && (policy.synthetic || !decoded.synthetic);
}

/** The ids in `values` that are not valid personIds, each once, in order of appearance. */
export function invalidPersonIds(values: readonly string[], policy: PersonIdPolicy = processPolicy): string[] {
  const bad = new Set<string>();
  for (const v of values) if (!isValidPersonId(v, policy)) bad.add(v);
  return [...bad];
}

const K1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const K2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

function checkDigit(digits: number[], weights: number[]): number {
  let sum = 0;
  for (let i = 0; i < weights.length; i++) sum += digits[i]! * weights[i]!;
  const k = 11 - (sum % 11);
  return k === 11 ? 0 : k;
}

/**
 * A syntactically valid fødselsnummer for a birth date and individual number (0..999), or
 * undefined when that combination has no valid check digits (about 1 in 6). The classic check
 * digit rule is used, so the result also passes validators that predate 2032. `synthetic` adds
 * 80 (Tenor) or 40 (NAV) to the month: such a number belongs to no real person. Without it the
 * number has the shape of a real one, and the caller must not assume it is unused.
 */
export function makeFnr(birth: Date, individual: number, dNumber = false, synthetic: 0 | 40 | 80 = 0): string | undefined {
  const dd = birth.getUTCDate() + (dNumber ? 40 : 0);
  const mm = birth.getUTCMonth() + 1 + synthetic;
  const yy = birth.getUTCFullYear() % 100;
  const base = `${String(dd).padStart(2, '0')}${String(mm).padStart(2, '0')}${String(yy).padStart(2, '0')}${String(individual).padStart(3, '0')}`;
  const digits = [...base].map(Number);
  const k1 = checkDigit(digits, K1);
  if (k1 === 10) return undefined;
  digits.push(k1);
  const k2 = checkDigit(digits, K2);
  if (k2 === 10) return undefined;
  return `${base}${k1}${k2}`;
}

/**
 * Individual-number ranges by birth year (Skatteetaten): 000-499 for 1900-1999, 500-999 for
 * 2000-2039, so a generated number decodes to the intended century.
 */
export function individualRange(year: number): [number, number] {
  return year >= 2000 ? [500, 999] : [0, 499];
}

/**
 * Deterministic synthetic fødselsnummer number `n` (0-based): Test Norge / Tenor numbers (month
 * + 80), which no real person has, so seeded and test data can never name someone. Walks birth
 * dates from 1930 to 2009 and individual numbers within each date, skipping combinations without
 * valid check digits. The same n always gives the same id, so seeding is repeatable.
 */
export function* syntheticPersonIds(start = 0): Generator<string> {
  const first = Date.UTC(1930, 0, 1);
  const days = Math.floor((Date.UTC(2009, 11, 31) - first) / 86_400_000) + 1;
  let produced = 0;
  // Spread consecutive n over dates first so a sample covers ages evenly.
  for (let slot = 0; slot < 500; slot++) {
    for (let day = 0; day < days; day++) {
      const birth = new Date(first + day * 86_400_000);
      const [lo] = individualRange(birth.getUTCFullYear());
      const id = makeFnr(birth, lo + slot, false, 80);
      if (!id) continue;
      if (produced++ >= start) yield id;
    }
  }
}

/** The first `count` synthetic personIds (see syntheticPersonIds). */
export function syntheticPersonIdList(count: number, start = 0): string[] {
  const out: string[] = [];
  if (count <= 0) return out;
  for (const id of syntheticPersonIds(start)) {
    out.push(id);
    if (out.length >= count) break;
  }
  return out;
}
