import { createHash } from 'node:crypto';

/**
 * Canonical JSON (object keys sorted, no whitespace; the subset of RFC 8785 our data uses:
 * strings, finite numbers, booleans, null, arrays, objects), so a hash computed before a
 * jsonb round trip equals the one computed after it.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no NaN or Infinity');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
}

export interface ChainedEvent {
  messageId: string;
  seq: number;
  type: string;
  at: Date;
  data: Record<string, unknown>;
  prevHash: string | null;
}

/** hash = SHA-256 over the canonical event including the previous event's hash (hex). */
export function eventHash(e: ChainedEvent): string {
  const body = canonicalJson({ messageId: e.messageId, seq: e.seq, type: e.type, at: e.at.toISOString(), data: e.data, prevHash: e.prevHash });
  return createHash('sha256').update(body).digest('hex');
}

export interface ChainProblem {
  seq: number;
  problem: string;
}

/** Checks a whole chain: contiguous seq from 1, each prevHash the hash before, each hash recomputed. */
export function checkChain(events: readonly (ChainedEvent & { hash: string })[]): ChainProblem[] {
  const problems: ChainProblem[] = [];
  let prev: string | null = null;
  events.forEach((e, i) => {
    if (e.seq !== i + 1) problems.push({ seq: e.seq, problem: `expected seq ${i + 1}` });
    if (e.prevHash !== prev) problems.push({ seq: e.seq, problem: 'prevHash does not match the event before' });
    if (eventHash(e) !== e.hash) problems.push({ seq: e.seq, problem: 'hash does not match the event content' });
    prev = e.hash;
  });
  return problems;
}
