import type { FastifyInstance } from 'fastify';
import { commonProblems, Problem } from '../errors/problem.js';

/**
 * Values no field of any route accepts, whatever its schema says: a U+0000 in a string or an
 * object key (Postgres text and jsonb cannot hold it) and a number that is not finite (`Infinity`,
 * `-Infinity` and `NaN` pass JSON Schema's numeric checks after query-string coercion, and
 * `1e400` in JSON parses to Infinity). Each is refused with a 400 naming the field.
 */
export interface BadValue {
  /** JSON pointer of the offending value (or key) inside the checked object; '' for the root. */
  pointer: string;
  message: string;
}

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1').replace(/\u0000/g, '\\u0000');

/** The first forbidden value in `value` (walked without recursion, so deep nesting cannot overflow). */
export function findBadValue(value: unknown): BadValue | undefined {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return { pointer: at, message: 'must not contain U+0000' };
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { pointer: at, message: 'must be a finite number' };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${at}/${i}`]);
    } else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v) && typeof (v as { pipe?: unknown }).pipe !== 'function') {
      for (const key of Object.keys(v)) {
        if (key.includes('\u0000')) return { pointer: `${at}/${escapePointer(key)}`, message: 'property names must not contain U+0000' };
        stack.push([(v as Record<string, unknown>)[key], `${at}/${escapePointer(key)}`]);
      }
    }
  }
  return undefined;
}

/** The problem for a bad value found in one part of the request (`in` as in validation errors). */
export function badValueProblem(where: string, bad: BadValue): Problem {
  const pointer = bad.pointer || '/';
  return new Problem(commonProblems.VALIDATION, `${where}${bad.pointer} ${bad.message}`, { errors: [{ in: where, pointer, message: bad.message }] });
}

/**
 * Checks every request: the parsed body before schema validation (whose type coercion would turn
 * a 1e400 into the string "Infinity"), params, query and headers after it (when "Infinity" in a
 * query string has become a number).
 */
export function installInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const bad = findBadValue(request.body);
    if (bad) throw badValueProblem('body', bad);
  });
  app.addHook('preHandler', async (request) => {
    const parts: [string, unknown][] = [
      ['params', request.params],
      ['querystring', request.query],
      ['headers', request.headers],
    ];
    for (const [where, value] of parts) {
      const bad = findBadValue(value);
      if (bad) throw badValueProblem(where, bad);
    }
  });
}
