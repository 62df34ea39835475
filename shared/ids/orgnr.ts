import { createHash } from 'node:crypto';
import { organisasjonsnummer } from 'norsk-validator';

/** Organisation number: 9 digits, the last a mod-11 check digit (norsk-validator). */
export function isValidOrgnr(value: unknown): value is string {
  return typeof value === 'string' && /^\d{9}$/.test(value) && organisasjonsnummer(value);
}

const WEIGHTS = [3, 2, 7, 6, 5, 4, 3, 2];

/** Appends the check digit to 8 digits, or undefined when none exists (remainder 1). */
export function withOrgnrCheckDigit(first8: string): string | undefined {
  if (!/^\d{8}$/.test(first8)) throw new Error('need 8 digits');
  const sum = [...first8].reduce((s, d, i) => s + Number(d) * WEIGHTS[i]!, 0);
  const k = 11 - (sum % 11);
  if (k === 10) return undefined;
  return `${first8}${k === 11 ? 0 : k}`;
}

/**
 * A valid organisation number derived from a name, stable across runs: the same name always
 * gives the same number. Starts with 8 or 9 like real ones. `avoid` skips numbers already used.
 */
export function orgnrForName(name: string, avoid: ReadonlySet<string> = new Set()): string {
  for (let attempt = 0; ; attempt++) {
    const h = createHash('sha256').update(`${name}\u0000${attempt}`).digest();
    const n = h.readUInt32BE(0) % 10_000_000;
    const first8 = `${8 + (h[4]! % 2)}${String(n).padStart(7, '0')}`;
    const orgnr = withOrgnrCheckDigit(first8);
    if (orgnr && !avoid.has(orgnr)) return orgnr;
  }
}
