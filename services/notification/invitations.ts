import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { isValidPersonId } from '../../shared/ids/person-id.js';
import { findRecipients, findSender } from '../../shared/registry/recipients.js';
import { Problem } from '../../shared/errors/problem.js';
import type { NotificationContext } from './context.js';
import { notificationProblems } from './problems.js';
import { insertAttempts, type PlannedAttempt } from './schedule.js';
import { nextInWindow } from './window.js';

export const INVITATION_RESULTS = [
  'INVITED',
  'RECENTLY_INVITED',
  'HAS_MAILBOX',
  'RESERVED',
  'NOT_REGISTERED',
  'DELETED',
  'NO_EMAIL',
  'EMAIL_EXPIRED',
  'INVALID_PERSON_ID',
] as const;
export type InvitationResult = (typeof INVITATION_RESULTS)[number];

const DAY_MS = 86_400_000;

/**
 * An agency asks the hub to e-mail persons without a mailbox (and not reserved) to choose one.
 * The e-mail address comes from the registry, under the same 18-month rule as alerts; a person
 * is invited at most once per INVITATION_COOLDOWN_DAYS, whoever asks. Each invitation is an
 * attempt row sent by the e-mail worker, so it goes out once, in the daytime window.
 */
export async function invite(ctx: NotificationContext, senderOrgnr: string, personIds: readonly string[]): Promise<{ personId: string; result: InvitationResult }[]> {
  const sender = await findSender(ctx.db, senderOrgnr);
  if (!sender) throw new Problem(notificationProblems.SENDER_NOT_REGISTERED, `Organisation ${senderOrgnr} is not a registered sender`);
  if (sender.status !== 'active') throw new Problem(notificationProblems.SENDER_SUSPENDED);

  const now = ctx.clock();
  const valid = [...new Set(personIds.filter((p) => isValidPersonId(p)))];
  const recipients = await findRecipients(ctx.db, valid, { now, certificates: false });
  const recent = new Set<string>();
  if (valid.length > 0 && ctx.config.INVITATION_COOLDOWN_DAYS > 0) {
    const rows = await ctx.db
      .selectFrom('notification_attempts')
      .select('person_id')
      .where('kind', '=', 'INVITATION')
      .where('person_id', '=', sql<string>`any(${sql.val(valid)}::text[])`)
      .where('created_at', '>', new Date(now.getTime() - ctx.config.INVITATION_COOLDOWN_DAYS * DAY_MS))
      .where('state', 'in', ['SCHEDULED', 'SENDING', 'SENT'])
      .execute();
    for (const r of rows) recent.add(r.person_id);
  }

  const decided = new Map<string, InvitationResult>();
  for (const id of valid) {
    const r = recipients.get(id)!;
    let result: InvitationResult;
    if (r.status === 'NOT_REGISTERED') result = 'NOT_REGISTERED';
    else if (r.status === 'DELETED') result = 'DELETED';
    else if (r.reserved) result = 'RESERVED';
    else if (r.mailbox) result = 'HAS_MAILBOX';
    else if (!r.email) result = 'NO_EMAIL';
    else if (!r.email.usable) result = 'EMAIL_EXPIRED';
    else if (recent.has(id)) result = 'RECENTLY_INVITED';
    else result = 'INVITED';
    decided.set(id, result);
  }

  const due = nextInWindow(now, ctx.window);
  const rows = valid
    .filter((id) => decided.get(id) === 'INVITED')
    .map((id): PlannedAttempt => ({ id: randomUUID(), kind: 'INVITATION', message_id: null, channel: 'email', repetition: 0, after_days: 0, sender_orgnr: senderOrgnr, person_id: id, due_at: due }));
  await insertAttempts(ctx.db, rows, now, 'invitation');
  return personIds.map((personId) => ({ personId, result: decided.get(personId) ?? 'INVALID_PERSON_ID' }));
}
