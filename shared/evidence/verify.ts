import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { HUB_ALG } from '../crypto/hub-keys.js';
import { checkChain, type ChainedEvent } from './chain.js';
import { loadEvents, RECEIPT_TYP, type ReceiptPayload } from './events.js';

export interface ReceiptVerification {
  valid: boolean;
  /** The signature verified against the JWKS (under `kid`). */
  signature: boolean;
  /** The message's event chain is intact and contains the receipt's event with the same hash. */
  chain: boolean;
  kid?: string;
  receipt?: ReceiptPayload;
  problems: string[];
}

/**
 * Checks a receipt: its ES256 signature against the hub's JWKS, then the message's hash chain
 * (every hash recomputed, every link checked) and that the chain holds the event the receipt
 * names with the hash it names. Tampering with the log or the receipt shows up in one of them.
 */
export async function verifyReceipt(
  jws: string,
  opts: { jwks: JSONWebKeySet; events: readonly (ChainedEvent & { hash: string })[] | ((messageId: string) => Promise<readonly (ChainedEvent & { hash: string })[]>) },
): Promise<ReceiptVerification> {
  const problems: string[] = [];
  let receipt: ReceiptPayload | undefined;
  let kid: string | undefined;
  try {
    const { payload, protectedHeader } = await compactVerify(jws.trim(), createLocalJWKSet(opts.jwks), { algorithms: [HUB_ALG] });
    kid = protectedHeader.kid;
    if (protectedHeader.typ !== RECEIPT_TYP) problems.push(`typ is ${String(protectedHeader.typ)}, not ${RECEIPT_TYP}`);
    receipt = JSON.parse(Buffer.from(payload).toString('utf8')) as ReceiptPayload;
  } catch (err) {
    problems.push(`signature: ${err instanceof Error ? err.message : String(err)}`);
    return { valid: false, signature: false, chain: false, problems };
  }
  const signature = problems.length === 0;
  const events = typeof opts.events === 'function' ? await opts.events(receipt.messageId) : opts.events;
  const chainProblems = checkChain(events).map((p) => `event ${p.seq}: ${p.problem}`);
  if (events.some((e) => e.messageId !== receipt.messageId)) chainProblems.push('the events belong to another message');
  const named = events.find((e) => e.seq === receipt.event?.seq);
  if (!named) chainProblems.push(`the log has no event ${receipt.event?.seq}`);
  else if (named.hash !== receipt.event.hash || named.type !== receipt.event.type) chainProblems.push(`event ${named.seq} differs from the one the receipt signed`);
  problems.push(...chainProblems);
  const chain = chainProblems.length === 0;
  return { valid: signature && chain, signature, chain, kid, receipt, problems };
}

/** The same check against the hub's own database: its published keys and the stored log. */
export async function verifyReceiptInDb(db: Kysely<Database>, jws: string): Promise<ReceiptVerification> {
  const rows = await db.selectFrom('hub_keys').select('public_jwk').execute();
  return verifyReceipt(jws, { jwks: { keys: rows.map((r) => r.public_jwk) } as JSONWebKeySet, events: (id) => loadEvents(db, id) });
}
