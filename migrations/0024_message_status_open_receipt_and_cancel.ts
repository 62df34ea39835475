import { sql, type Kysely } from 'kysely';

/**
 * `message_status(id)` with both rules written in parallel: the open-receipt rule of 0012 (an
 * OPENED counts only when the letter asked for an open receipt; shared/evidence/sender-view.ts
 * holds the same rule) and CANCELLED from 0020. Each of those two replaced the function whole, so
 * whichever ran last dropped the other's rule; this one restates both.
 */
const STATUS_CASE = sql`case e.type
               when 'SEALED' then 'ACCEPTED'
               when 'DELIVERED' then 'DELIVERED'
               when 'NOTIFIED' then 'NOTIFIED'
               when 'OPENED' then 'OPENED'
               when 'PRINT_ACCEPTED' then 'PRINT_ACCEPTED'
               when 'PRINTED' then 'PRINT_ACCEPTED'
               when 'CANCELLED' then 'CANCELLED'
               when 'ERROR' then case when e.data->>'reason' = 'EXPIRED' then 'EXPIRED' else 'FAILED' end
               else 'FAILED'
             end`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function message_status(mid uuid, out status text, out status_at timestamptz)
    language sql stable as $$
      with letter as (select coalesce((select m.open_receipt from messages m where m.id = mid), false) as open_receipt)
      select ${STATUS_CASE}, e.at
        from message_events e, letter
       where e.message_id = mid
         and e.type in ('SEALED', 'DELIVERED', 'NOTIFIED', 'OPENED', 'PRINT_ACCEPTED', 'PRINTED', 'FAILED', 'RETURNED', 'ERROR', 'CANCELLED')
         and (e.type <> 'OPENED' or letter.open_receipt)
         and not (e.type = 'NOTIFIED' and letter.open_receipt
                  and exists (select 1 from message_events o where o.message_id = mid and o.type = 'OPENED'))
       order by e.seq desc
       limit 1
    $$`.execute(db);
}

export async function down(): Promise<void> {
  // 0020's and 0012's own down steps restore their versions.
}
