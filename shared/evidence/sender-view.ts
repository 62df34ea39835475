/**
 * What of a letter's evidence its sender is shown. The chain records everything that happened
 * (OPENED included, whatever the letter asked for), but an opening is the citizen's business
 * unless the sender asked for an open receipt (`openReceipt`, åpningskvittering): without it the
 * sender gets no OPENED receipt (so no webhook push either), no OPENED on the timeline, and a
 * status that stays where it was (DELIVERED or NOTIFIED). `message_status()` applies the same
 * rule in SQL (migration 0012).
 */
export function senderMaySee(eventType: string, letter: { openReceipt: boolean }): boolean {
  return eventType !== 'OPENED' || letter.openReceipt;
}
