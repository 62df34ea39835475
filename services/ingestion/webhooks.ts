import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { HubKeys } from '../../shared/crypto/hub-keys.js';
import { Problem } from '../../shared/errors/problem.js';
import { decodeJws } from './receipts.js';
import { ingestionProblems } from './problems.js';
import { startPollLoop } from '../../shared/runtime/poll-loop.js';

/**
 * Receipt webhooks. An operator registers one HTTPS URL per sender; each new receipt is POSTed
 * to it, signed by the hub (detached ES256 JWS over the exact body, verifiable against
 * /.well-known/jwks.json), retried with exponential backoff. A 2xx acknowledges the receipt.
 *
 * SSRF: URLs into loopback, private, link-local, CGNAT, multicast or reserved networks are
 * refused when registered and again when connecting: the address the connection actually uses
 * is checked in the socket's DNS lookup, so a name that later resolves inward (DNS rebinding)
 * is refused too. WEBHOOK_ALLOW_PRIVATE lifts this (and allows http://) for development.
 */

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** True for addresses a webhook may not reach (IPv4-mapped IPv6 judged by its IPv4 address). */
export function isNonPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isNonPublicAddress(mapped[1]!);
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class WebhookRefused extends Error {
  override name = 'WebhookRefused';
}

/** A socket lookup that refuses non-public addresses (unless allowed). */
export function safeLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return (callback as (e: Error) => void)(err);
      const bad = allowPrivate ? undefined : addresses.find((a) => isNonPublicAddress(a.address));
      if (bad || addresses.length === 0) {
        return (callback as (e: Error) => void)(new WebhookRefused(`${hostname} resolves to a non-public address`));
      }
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0]!;
      return (callback as (e: null, a: string, f: number) => void)(null, first.address, first.family);
    });
  };
}

const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** Checks a webhook URL before it is stored; throws a 422 problem naming the reason. */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  const refuse = (why: string) => new Problem(ingestionProblems.WEBHOOK_URL_REFUSED, why);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) throw refuse('webhooks must use https://');
  if (url.username || url.password) throw refuse('credentials in the URL are not allowed');
  if (url.hash) throw refuse('a fragment is not allowed');
  const host = hostOf(url);
  if (allowPrivate) return url;
  if (isIP(host)) {
    if (isNonPublicAddress(host)) throw refuse('the address is loopback, private or reserved');
    return url;
  }
  const addresses = await new Promise<LookupAddress[]>((resolve) => dnsLookup(host, { all: true }, (err, a) => resolve(err ? [] : a)));
  if (addresses.length === 0) throw refuse(`${host} does not resolve`);
  if (addresses.some((a) => isNonPublicAddress(a.address))) throw refuse(`${host} resolves to a loopback, private or reserved address`);
  return url;
}

export interface PushResult {
  ok: boolean;
  status?: number;
  error?: string;
}

/** One POST with the safe lookup; never follows redirects. */
export function postJson(rawUrl: string, body: Buffer, headers: Record<string, string>, opts: { allowPrivate: boolean; timeoutMs: number }): Promise<PushResult> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return resolve({ ok: false, error: 'invalid URL' });
    }
    const host = hostOf(url);
    if (!opts.allowPrivate && (url.protocol !== 'https:' || (isIP(host) && isNonPublicAddress(host)))) {
      return resolve({ ok: false, error: 'refused: not a public https URL' });
    }
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), 'user-agent': 'postbud-webhook/1', ...headers },
        lookup: safeLookup(opts.allowPrivate),
        timeout: opts.timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, status, error: `HTTP ${status}` });
        });
        res.on('error', (err) => resolve({ ok: false, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ ok: false, error: err instanceof WebhookRefused ? `refused: ${err.message}` : err.message }));
    req.end(body);
  });
}

export const WEBHOOK_SIGNATURE_HEADER = 'postbud-signature';
export const WEBHOOK_TYP = 'postbud-webhook+jws';

/** The body and headers of one push. The signature is a detached JWS over the exact body bytes. */
export async function webhookRequest(hub: HubKeys, receipt: { id: string; type: string; message_id: string; jws: string }, attempt: number) {
  const body = Buffer.from(
    JSON.stringify({ id: receipt.id, type: receipt.type, messageId: receipt.message_id, jws: receipt.jws, receipt: decodeJws(receipt.jws), sentAt: new Date().toISOString(), attempt }),
  );
  const signature = await hub.sign(body, { typ: WEBHOOK_TYP, detached: true });
  return { body, headers: { [WEBHOOK_SIGNATURE_HEADER]: signature, 'postbud-receipt-id': receipt.id } };
}

export interface PusherOptions {
  allowPrivate: boolean;
  maxAttempts: number;
  retryBaseMs: number;
  timeoutMs: number;
}

export const retryDelayMs = (attempt: number, baseMs: number) => Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000);

/**
 * One round: queue the receipts new since each webhook was registered, claim the due pushes
 * (SKIP LOCKED, with a lease so a crashed pusher's claim comes back), send them, record results.
 */
export async function pushRound(db: Kysely<Database>, hub: HubKeys, opts: PusherOptions, batch = 50): Promise<number> {
  await sql`
    insert into webhook_pushes (receipt_id, sender_orgnr)
    select r.id, r.sender_orgnr
      from webhooks w
      join receipts r on r.sender_orgnr = w.sender_orgnr and r.acked_at is null and r.created_at >= w.created_at
     where not exists (select 1 from webhook_pushes p where p.receipt_id = r.id)
     limit 1000
    on conflict do nothing`.execute(db);
  const leaseMs = opts.timeoutMs + 5_000;
  const claimed = await sql<{ receipt_id: string; attempts: number }>`
    update webhook_pushes set attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
     where receipt_id in (
       select receipt_id from webhook_pushes
        where delivered_at is null and gave_up_at is null and next_attempt_at <= now()
        order by next_attempt_at limit ${batch} for update skip locked)
    returning receipt_id, attempts`.execute(db);
  await Promise.all(
    claimed.rows.map(async ({ receipt_id, attempts }) => {
      const r = await db
        .selectFrom('receipts as r')
        .leftJoin('webhooks as w', 'w.sender_orgnr', 'r.sender_orgnr')
        .select(['r.id', 'r.type', 'r.message_id', 'r.jws', 'r.acked_at', 'w.url'])
        .where('r.id', '=', receipt_id)
        .executeTakeFirst();
      if (!r || r.acked_at || !r.url) {
        // Acknowledged by a pull meanwhile, or the webhook was removed: nothing to push.
        await db.updateTable('webhook_pushes').set({ gave_up_at: new Date(), last_error: r?.acked_at ? 'acknowledged by pull' : 'no webhook' }).where('receipt_id', '=', receipt_id).execute();
        return;
      }
      const { body, headers } = await webhookRequest(hub, r, attempts);
      const result = await postJson(r.url, body, headers, opts);
      if (result.ok) {
        await db.transaction().execute(async (trx) => {
          await trx.updateTable('webhook_pushes').set({ delivered_at: new Date(), last_error: null }).where('receipt_id', '=', receipt_id).execute();
          await trx.updateTable('receipts').set({ acked_at: new Date() }).where('id', '=', receipt_id).where('acked_at', 'is', null).execute();
        });
        return;
      }
      const giveUp = attempts >= opts.maxAttempts;
      await db
        .updateTable('webhook_pushes')
        .set({
          last_error: (result.error ?? 'failed').slice(0, 500),
          ...(giveUp ? { gave_up_at: new Date() } : { next_attempt_at: new Date(Date.now() + retryDelayMs(attempts, opts.retryBaseMs)) }),
        })
        .where('receipt_id', '=', receipt_id)
        .execute();
    }),
  );
  return claimed.rows.length;
}

export function startPusher(db: Kysely<Database>, hub: HubKeys, opts: PusherOptions & { pollMs: number; logger: { warn(obj: unknown, msg?: string): void } }) {
  return startPollLoop(() => pushRound(db, hub, opts), opts.pollMs, opts.logger, 'webhook push round failed; retrying');
}
