/**
 * Whether an error means a dependency is down (so the client should retry later: 503), rather than
 * a fault in this request or in our code (500). Errors reach us from pg, pg-pool, Kysely and
 * ioredis/BullMQ, sometimes wrapped (`cause`) or bundled (AggregateError: one per address tried).
 */

export type Dependency = 'database' | 'queue';

/** Socket-level failures: the peer is not there or went away. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * SQLSTATEs of a server that cannot serve now: class 08 (connection exception), 57P01
 * admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now ("the database system is
 * starting up" / "shutting down"), 53300 too_many_connections.
 */
const SQLSTATE_DOWN = /^(08\d{3}|57P0[123]|53300)$/;

/** What pg and pg-pool say, without a code, when a connection is lost or cannot be had in time. */
const PG_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end on the pool',
  'the database system is',
];

/** What ioredis says when Redis is unreachable. */
const REDIS_MESSAGES = ['Connection is closed', 'Reached the max retries per request limit', 'Stream isn\'t writeable'];

function* chain(err: unknown, depth = 0): Generator<Record<string, unknown>> {
  if (depth > 5 || typeof err !== 'object' || err === null) return;
  const e = err as Record<string, unknown>;
  yield e;
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* chain(inner, depth + 1);
  if (e.cause) yield* chain(e.cause, depth + 1);
}

/** The dependency `err` says is down, or undefined for any other error. */
export function unavailableDependency(err: unknown): Dependency | undefined {
  for (const e of chain(err)) {
    const message = typeof e.message === 'string' ? e.message : '';
    const name = typeof e.name === 'string' ? e.name : '';
    if (name === 'MaxRetriesPerRequestError' || REDIS_MESSAGES.some((m) => message.includes(m))) return 'queue';
    if (typeof e.code === 'string' && SQLSTATE_DOWN.test(e.code)) return 'database';
    if (PG_MESSAGES.some((m) => message.includes(m))) return 'database';
    // A bare socket error: Postgres is what requests talk to (ioredis queues commands while
    // Redis is away and fails them with the messages above).
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return 'database';
  }
  return undefined;
}
