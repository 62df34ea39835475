import { Problem } from '../../shared/errors/problem.js';
import { storageProblems } from './problems.js';

export type ProviderEvent =
  | { type: 'OPENED'; at: string; securityLevel: 3 | 4 }
  | { type: 'FAILED'; reason: string }
  | { type: 'PRINTED'; at: string }
  | { type: 'RETURNED'; at: string; reason?: string };

/** What of the letter a reported event is checked against. */
export interface LetterTerms {
  securityLevel: number;
  availableAt: Date;
  /** When the hub offered the delivery; nothing can have happened to it before. */
  createdAt: Date;
}

/**
 * Provider clocks are not ours: an `at` up to this far on the wrong side of a bound is taken as
 * clock drift, not as a false report. Five minutes is what token validation tolerates elsewhere.
 */
export const CLOCK_TOLERANCE_MS = 5 * 60_000;

/**
 * A reported event must be possible for this letter, or the sender's receipt would certify
 * something that cannot have happened: opened with a weaker login than the letter demands,
 * opened before the letter was visible, or anything dated in the future or before the hub
 * offered the delivery. Each has its own problem type (422), checked before any state changes.
 */
export function checkAgainstLetter(letter: LetterTerms, ev: ProviderEvent, now: Date): void {
  if (ev.type === 'FAILED') return;
  const at = new Date(ev.at);
  if (at.getTime() > now.getTime() + CLOCK_TOLERANCE_MS) {
    throw new Problem(storageProblems.EVENT_IN_FUTURE, `${ev.type} is dated ${ev.at}, in the future`, { at: ev.at });
  }
  if (at.getTime() < letter.createdAt.getTime() - CLOCK_TOLERANCE_MS) {
    throw new Problem(storageProblems.EVENT_BEFORE_DELIVERY, `${ev.type} is dated before the hub offered the delivery (${letter.createdAt.toISOString()})`, {
      at: ev.at,
      offeredAt: letter.createdAt.toISOString(),
    });
  }
  if (ev.type !== 'OPENED') return;
  if (ev.securityLevel < letter.securityLevel) {
    throw new Problem(storageProblems.SECURITY_LEVEL_TOO_LOW, `The letter requires security level ${letter.securityLevel}; it was opened at ${ev.securityLevel}`, {
      required: letter.securityLevel,
      reported: ev.securityLevel,
    });
  }
  // availableAt is the sender's: the provider must hide the letter until then, so no tolerance.
  if (at.getTime() < letter.availableAt.getTime()) {
    throw new Problem(storageProblems.OPENED_BEFORE_AVAILABLE, `OPENED is dated before the letter's availableAt (${letter.availableAt.toISOString()})`, {
      at: ev.at,
      availableAt: letter.availableAt.toISOString(),
    });
  }
}
