import { createHash } from 'node:crypto';

/**
 * Canonical JSON (object keys sorted, no whitespace; the subset of RFC 8785 our data uses:
 * strings, finite numbers, booleans, null, arrays, objects), so a hash computed before a
 * jsonb round trip equals the one computed after it.
 */
export function canonicalJson(value: unknown): string {
  // Loops and string appends, not entries/filter/map/join: this runs several times per letter
  // (request fingerprint, event hashes), and the array-building form was ~2 % of intake CPU.
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no NaN or Infinity');
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
        return out + ']';
      }
      const record = value as Record<string, unknown>;
      // The default sort orders by UTF-16 code units, as RFC 8785 asks.
      const keys = Object.keys(record).sort();
      let out = '{';
      for (const key of keys) {
        const v = record[key];
        if (v === undefined) continue;
        out += (out.length === 1 ? '' : ',') + JSON.stringify(key) + ':' + canonicalJson(v);
      }
      return out + '}';
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
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
