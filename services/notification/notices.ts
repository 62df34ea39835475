import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { OUTBOX_JOB_PREFIX } from '../../shared/outbox/outbox.js';
import { findMoveOutcome, type MoveNoticeJob } from '../../shared/storage/move-outcome.js';
import type { NotificationContext } from './context.js';
import { alertQueueOf, type AlertJob } from './schedule.js';
import { nextInWindow } from './window.js';

/**
 * A citizen's move of delivered mail ended (storage's `citizen-notice` job, a trigger only): one
 * NOTICE e-mail attempt with its job, in one statement, at most once per move (`notice_key`),
 * sent by the e-mail worker like an alert, in the daytime window, under the registry's current
 * contact rules. Answers how many attempts it made (0 or 1).
 */
export async function planMoveNotice(ctx: NotificationContext, job: MoveNoticeJob): Promise<number> {
  const outcome = await findMoveOutcome(ctx.db, job.moveId);
  if (!outcome || outcome.state === 'IN_PROGRESS') return 0;
  const now = ctx.clock();
  const id = randomUUID();
  const due = nextInWindow(now, ctx.window);
  const facts = { state: outcome.state, letters: outcome.letters, moved: outcome.moved, missing: outcome.missing, failed: outcome.failed, toProviderName: outcome.toProviderName };
  const payload = JSON.stringify({ attemptId: id, dueAt: due.toISOString() } satisfies AlertJob);
  const { rows } = await sql<{ n: number }>`
    with planned as (select nextval(pg_get_serial_sequence('outbox', 'id')) as outbox_id),
    inserted as (
      insert into notification_attempts (id, kind, message_id, channel, sender_orgnr, person_id, due_at, created_at, job_id, notice, notice_key)
      select ${id}::uuid, 'NOTICE', null, 'email', ${outcome.toProviderOrgnr}, ${outcome.personId}, ${due.toISOString()}::timestamptz, ${now.toISOString()}::timestamptz,
             ${OUTBOX_JOB_PREFIX} || outbox_id, ${JSON.stringify(facts)}::jsonb, ${`move:${outcome.moveId}`}
        from planned
      on conflict (notice_key) where notice_key is not null do nothing
      returning id),
    jobs as (
      insert into outbox (id, queue, job_name, payload, delay_ms)
      select p.outbox_id, ${alertQueueOf('email')}, 'notice', ${payload}::jsonb, ${Math.max(0, due.getTime() - now.getTime())} from planned p join inserted on true)
    select count(*)::int as n from inserted`.execute(ctx.db);
  return rows[0]!.n;
}
