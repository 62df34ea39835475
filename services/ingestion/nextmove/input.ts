import type { FastifyRequest } from 'fastify';
import { violation } from './sbd.js';

/**
 * Input no schema catches, refused on every /api/ route before its handler: a NUL character in
 * any string (Postgres text and jsonb cannot hold it) and a number that is not a safe integer
 * (a query value such as `1e309` is coerced to Infinity and passes an integer schema).
 */
export function check(value: unknown, field: string, depth = 0): void {
  if (depth > 64) return;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw violation(field || 'body', 'Must not contain NUL characters');
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) throw violation(field || 'body', 'Is out of range', String(value));
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => check(v, `${field}[${i}]`, depth + 1));
  } else if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const [k, v] of Object.entries(value)) check(v, field ? `${field}.${k}` : k, depth + 1);
  }
}

export async function refuseUnsafeInput(request: FastifyRequest): Promise<void> {
  check(request.params, '');
  check(request.query, '');
  check(request.body, '');
}
