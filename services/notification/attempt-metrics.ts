import { sql } from 'kysely';
import { Gauge, type Registry } from 'prom-client';
import type { NotificationContext } from './context.js';

/**
 * Attempts taken over after their worker died mid-send, per channel: each may have reached its
 * peer twice under the same key (docs/notification.md, 'Exactly once'). Read from Postgres at
 * each scrape, so the figure is the system's, not one process's; operators alert on its increase.
 */
export function registerAttemptMetrics(registry: Registry, ctx: NotificationContext): void {
  new Gauge({
    name: 'notification_ambiguous_attempts',
    help: 'Alerts and invitations resent under the same key after a worker died between sending and recording the outcome (all time)',
    labelNames: ['channel'],
    registers: [registry],
    async collect() {
      this.reset();
      const { rows } = await sql<{ channel: string; n: string }>`
        select channel, count(*) as n from notification_attempts where ambiguous group by channel`
        .execute(ctx.db)
        .catch(() => ({ rows: [] }));
      for (const channel of ['email', 'sms']) this.set({ channel }, Number(rows.find((r) => r.channel === channel)?.n ?? 0));
    },
  });
}
