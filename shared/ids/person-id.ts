import { idnr } from '@navikt/fnrvalidator';

/**
 * personId: a fødselsnummer or D-number (11 digits, two mod-11 check digits, a real birth date;
 * D-numbers add 4 to the first digit). Validation is @navikt/fnrvalidator's, which also knows the
 * 2032 rule that lets the first check digit take four values. H-numbers and synthetic test
 * numbers (month + 40 / + 80) are not persons in the registry and are rejected.
 */
export function isValidPersonId(value: unknown): value is string {
  if (typeof value !== 'string' || !/^\d{11}$/.test(value)) return false;
  const result = idnr(value);
  return result.status === 'valid' && (result.type === 'fnr' || result.type === 'dnr');
}

/** The ids in `values` that are not valid personIds, each once, in order of appearance. */
export function invalidPersonIds(values: readonly string[]): string[] {
  const bad = new Set<string>();
  for (const v of values) if (!isValidPersonId(v)) bad.add(v);
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
 * digit rule is used, so the result also passes validators that predate 2032. For synthetic
 * data only: the caller must not assume the number is unused in the real world.
 */
export function makeFnr(birth: Date, individual: number, dNumber = false): string | undefined {
  const dd = birth.getUTCDate() + (dNumber ? 40 : 0);
  const mm = birth.getUTCMonth() + 1;
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
 * Deterministic synthetic fødselsnummer number `n` (0-based): walks birth dates from 1930 to
 * 2009 and individual numbers within each date, skipping combinations without valid check
 * digits. The same n always gives the same id, so seeding is repeatable.
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
      const id = makeFnr(birth, lo + slot);
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
