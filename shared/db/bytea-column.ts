import { sql, type RawBuilder } from 'kysely';

/**
 * A column of byte strings for an `unnest` insert, sent as ONE binary parameter plus offsets and
 * lengths, cut apart in SQL with `substring`. A `bytea[]` parameter goes out as text: node-pg
 * hex-encodes and escapes every element and Postgres parses the hex back, which for 10 KB
 * packages cost more CPU than the rest of the insert (bench/intake.ts: write syscalls and
 * Postgres CPU per letter both fell when the chunks moved to one binary parameter).
 *
 * `element(alias)` is the expression to select per row; `offsets`/`lengths` go into the unnest
 * next to the other columns under the names `<alias>_off` and `<alias>_len`.
 */
export function byteaColumn(values: readonly Buffer[]): { blob: Buffer; offsets: RawBuilder<unknown>; lengths: RawBuilder<unknown>; element: (alias: string) => RawBuilder<unknown> } {
  const offsets: number[] = [];
  const lengths: number[] = [];
  let at = 1; // substring is 1-based
  for (const v of values) {
    offsets.push(at);
    lengths.push(v.length);
    at += v.length;
  }
  const blob = Buffer.concat(values as Buffer[], at - 1);
  return {
    blob,
    offsets: sql`${sql.val(offsets)}::int[]`,
    lengths: sql`${sql.val(lengths)}::int[]`,
    element: (alias) => sql`substring(${blob}::bytea from ${sql.ref(`${alias}_off`)} for ${sql.ref(`${alias}_len`)})`,
  };
}
