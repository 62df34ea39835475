const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `s` can be bound to a uuid column (a malformed one would make Postgres fail the whole statement). */
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s);
