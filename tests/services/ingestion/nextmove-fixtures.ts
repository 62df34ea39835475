import { readFileSync } from 'node:fs';

/**
 * The DPI examples of the next-move documentation (tests/fixtures/nextmove/restdocs-dpi.json,
 * copied from felleslosninger/docs), and a helper putting our seeded sender and person in place
 * of the documentation's.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;
export const DOCS = JSON.parse(readFileSync(new URL('../../fixtures/nextmove/restdocs-dpi.json', import.meta.url), 'utf8')) as Record<string, Json>;
export const DOC_SENDER = '0192:910077473';
export const DOC_RECEIVER = '0192:910075918';
export const DOC_PERSON = '01017012345';

/** A documentation example with `sender` and `person` in place of theirs. */
export const substitute = (example: unknown, sender: string, person: string): Json =>
  JSON.parse(JSON.stringify(example).replaceAll(DOC_SENDER, `0192:${sender}`).replaceAll(DOC_RECEIVER, person).replaceAll(DOC_PERSON, person));

export const keys = (o: object) => Object.keys(o).sort();
