import { sql, type Kysely, type Selectable } from 'kysely';
import { Type, type Static } from 'typebox';
import type { HubKeys } from '../../../shared/crypto/hub-keys.js';
import type { Database } from '../../../shared/db/database.js';
import type { NextMoveSubscriptionsTable } from '../../../shared/db/tables/nextmove.js';
import { Problem } from '../../../shared/errors/problem.js';
import { ingestionProblems } from '../problems.js';
import { startPollLoop } from '../../../shared/runtime/poll-loop.js';
import { checkWebhookUrl, postJson, retryDelayMs, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TYP, type PusherOptions } from '../webhooks.js';
import { violation, violationEntry } from './sbd.js';
import { statusById, syncStatuses } from './statuses.js';

/**
 * next-move webhook subscriptions (/api/subscriptions): a sender's push endpoints for status
 * events of its messages. Same protection and delivery as the receipt webhooks (webhooks.ts):
 * the URL is checked against SSRF when stored and again at every connection, each body is
 * signed (detached ES256 JWS in `postbud-signature`, verifiable with the JWKS), failed pushes
 * are retried with the same backoff up to WEBHOOK_MAX_ATTEMPTS, claimed with SKIP LOCKED and a
 * lease. Creating or updating a subscription pings the endpoint first, as next-move does.
 */

export const SubscriptionInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255, description: 'A label to remember why it was created' }),
    pushEndpoint: Type.String({ minLength: 1, maxLength: 2048, description: 'URL to push events to (https; loopback and private networks are refused)' }),
    resource: Type.Union([Type.Literal('all'), Type.Literal('messages')]),
    event: Type.Union([Type.Literal('all'), Type.Literal('status')]),
    filter: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()], { description: 'status=..&serviceIdentifier=..&direction=.. (comma-separated values)' })),
  },
  { additionalProperties: false },
);
export type SubscriptionInput = Static<typeof SubscriptionInput>;

export const SubscriptionView = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  pushEndpoint: Type.String(),
  resource: Type.String(),
  event: Type.String(),
  filter: Type.Union([Type.String(), Type.Null()]),
});

const SERVICES = ['DPO', 'DPV', 'DPI', 'DPF', 'DPFIO', 'DPE', 'UNKNOWN'];
const DIRECTIONS = ['INCOMING', 'OUTGOING'];

interface ParsedFilter {
  status: string[] | null;
  service: string[] | null;
  direction: string[] | null;
}

/** Parses a filter; unknown keys or values are refused (status values only need the status shape: one never seen simply never matches). */
export function parseFilter(filter: string | null | undefined): ParsedFilter {
  const out: ParsedFilter = { status: null, service: null, direction: null };
  if (!filter) return out;
  const bad = (why: string) => new Problem(ingestionProblems.NEXTMOVE_INVALID_FILTER, `filter: ${why}`, {
    errors: [violationEntry('filter', why, filter.slice(0, 200), 'Filter')],
  });
  for (const pair of filter.split('&')) {
    const [key, value, ...rest] = pair.split('=');
    if (!key || value === undefined || rest.length > 0 || value === '') throw bad(`${pair.slice(0, 50)} is not key=value`);
    const values = value.split(',').map((v) => v.trim().toUpperCase());
    if (key === 'status') {
      if (!values.every((v) => /^[A-Z_]{1,40}$/.test(v))) throw bad('status values are next-move statuses');
      out.status = values;
    } else if (key === 'serviceIdentifier') {
      if (!values.every((v) => SERVICES.includes(v))) throw bad(`serviceIdentifier is one of ${SERVICES.join(', ')}`);
      out.service = values;
    } else if (key === 'direction') {
      if (!values.every((v) => DIRECTIONS.includes(v))) throw bad('direction is INCOMING or OUTGOING');
      out.direction = values;
    } else {
      throw bad(`unknown filter ${key.slice(0, 50)}; supported: status, serviceIdentifier, direction`);
    }
  }
  return out;
}

type SubscriptionRow = Selectable<NextMoveSubscriptionsTable>;

const view = (r: SubscriptionRow) => ({ id: Number(r.id), name: r.name, pushEndpoint: r.push_endpoint, resource: r.resource, event: r.event, filter: r.filter });

const notFound = (id: number) => new Problem(ingestionProblems.NEXTMOVE_SUBSCRIPTION_NOT_FOUND, `Subscription with id = ${id} was not found`);

/** A signed POST of one event body. */
async function push(hub: HubKeys, url: string, event: Record<string, unknown>, opts: { allowPrivate: boolean; timeoutMs: number }) {
  const body = Buffer.from(JSON.stringify(event));
  const signature = await hub.sign(body, { typ: WEBHOOK_TYP, detached: true });
  return postJson(url, body, { [WEBHOOK_SIGNATURE_HEADER]: signature }, opts);
}

export interface SubscriptionContext {
  db: Kysely<Database>;
  hub: HubKeys;
  allowPrivate: boolean;
  timeoutMs: number;
}

/** Checks the URL (SSRF) and the filter, then pings the endpoint; a refused ping is a 400, as in next-move. */
async function checked(ctx: SubscriptionContext, input: SubscriptionInput) {
  let url: URL;
  try {
    url = new URL(input.pushEndpoint);
  } catch {
    throw violation('pushEndpoint', 'Must be a well-formed URL', input.pushEndpoint, 'URL');
  }
  url = await checkWebhookUrl(url.toString(), ctx.allowPrivate);
  const filter = parseFilter(input.filter);
  const ping = await push(ctx.hub, url.toString(), { createdTs: new Date().toISOString(), event: 'ping' }, ctx);
  if (!ping.ok) throw new Problem(ingestionProblems.NEXTMOVE_PING_FAILED, `The ping to pushEndpoint failed: ${(ping.error ?? 'no answer').slice(0, 200)}`);
  return { url: url.toString(), filter };
}

export async function createSubscription(ctx: SubscriptionContext, org: string, input: SubscriptionInput) {
  const { url, filter } = await checked(ctx, input);
  const { rows } = await sql<SubscriptionRow>`
    insert into nextmove_subscriptions (sender_orgnr, name, push_endpoint, resource, event, filter, filter_status, filter_service, filter_direction)
    values (${org}, ${input.name}, ${url}, ${input.resource}, ${input.event}, ${input.filter ?? null}, ${filter.status}, ${filter.service}, ${filter.direction})
    returning *`.execute(ctx.db);
  return view(rows[0]!);
}

export async function updateSubscription(ctx: SubscriptionContext, org: string, id: number, input: SubscriptionInput) {
  await getSubscription(ctx.db, org, id);
  const { url, filter } = await checked(ctx, input);
  const { rows } = await sql<SubscriptionRow>`
    update nextmove_subscriptions set name = ${input.name}, push_endpoint = ${url}, resource = ${input.resource}, event = ${input.event},
           filter = ${input.filter ?? null}, filter_status = ${filter.status}, filter_service = ${filter.service}, filter_direction = ${filter.direction}
     where id = ${id} and sender_orgnr = ${org} returning *`.execute(ctx.db);
  if (!rows[0]) throw notFound(id);
  return view(rows[0]);
}

export async function getSubscription(db: Kysely<Database>, org: string, id: number) {
  const { rows } = await sql<SubscriptionRow>`select * from nextmove_subscriptions where id = ${id} and sender_orgnr = ${org}`.execute(db);
  if (!rows[0]) throw notFound(id);
  return view(rows[0]);
}

export async function listSubscriptions(db: Kysely<Database>, org: string, page: number, size: number) {
  const { rows } = await sql<SubscriptionRow & { total: string }>`
    select *, count(*) over () as total from nextmove_subscriptions where sender_orgnr = ${org} order by id limit ${size} offset ${page * size}`.execute(db);
  const total = rows[0] ? Number(rows[0].total) : Number((await sql<{ n: string }>`select count(*) as n from nextmove_subscriptions where sender_orgnr = ${org}`.execute(db)).rows[0]!.n);
  return { items: rows.map(view), total };
}

export async function deleteSubscription(db: Kysely<Database>, org: string, id: number) {
  const r = await db.deleteFrom('nextmove_subscriptions').where('id', '=', String(id)).where('sender_orgnr', '=', org).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw notFound(id);
}

export async function deleteAllSubscriptions(db: Kysely<Database>, org: string) {
  await db.deleteFrom('nextmove_subscriptions').where('sender_orgnr', '=', org).execute();
}

/**
 * One round: fold new evidence into statuses (which queues their pushes), then claim due pushes
 * (SKIP LOCKED, leased) and send each status event, recording the result.
 */
export async function nextMovePushRound(db: Kysely<Database>, hub: HubKeys, opts: PusherOptions, batch = 50): Promise<number> {
  const synced = await syncStatuses(db);
  const leaseMs = opts.timeoutMs + 5_000;
  const claimed = await sql<{ subscription_id: string; status_id: string; attempts: number; push_endpoint: string }>`
    with c as (
      update nextmove_pushes set attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
       where (subscription_id, status_id) in (
         select subscription_id, status_id from nextmove_pushes
          where delivered_at is null and gave_up_at is null and next_attempt_at <= now()
          order by next_attempt_at limit ${batch} for update skip locked)
      returning subscription_id, status_id, attempts)
    select c.*, s.push_endpoint from c join nextmove_subscriptions s on s.id = c.subscription_id`.execute(db);
  await Promise.all(
    claimed.rows.map(async (p) => {
      const status = await statusById(db, p.status_id);
      const done = (set: Record<string, unknown>) =>
        db.updateTable('nextmove_pushes').set(set).where('subscription_id', '=', p.subscription_id).where('status_id', '=', p.status_id).execute();
      if (!status) return done({ gave_up_at: new Date(), last_error: 'status gone' });
      const event = {
        createdTs: status.lastUpdate,
        resource: 'messages',
        event: 'status',
        messageId: status.messageId,
        conversationId: status.conversationId,
        direction: 'OUTGOING',
        serviceIdentifier: 'DPI',
        status: status.status,
        description: status.description,
      };
      const result = await push(hub, p.push_endpoint, event, opts);
      if (result.ok) return done({ delivered_at: new Date(), last_error: null });
      const giveUp = p.attempts >= opts.maxAttempts;
      return done({
        last_error: (result.error ?? 'failed').slice(0, 500),
        ...(giveUp ? { gave_up_at: new Date() } : { next_attempt_at: new Date(Date.now() + retryDelayMs(p.attempts, opts.retryBaseMs)) }),
      });
    }),
  );
  return synced + claimed.rows.length;
}

export function startNextMovePusher(db: Kysely<Database>, hub: HubKeys, opts: PusherOptions & { pollMs: number; logger: { warn(obj: unknown, msg?: string): void } }) {
  return startPollLoop(() => nextMovePushRound(db, hub, opts), opts.pollMs, opts.logger, 'next-move push round failed; retrying');
}
