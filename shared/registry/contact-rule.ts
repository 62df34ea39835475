/**
 * The 18-month rule (eForvaltningsforskriften § 32): a contact point may be used for alerts only
 * if the citizen updated or verified it within the last 18 months. This is the one place the rule
 * lives; lookups (canNotify, KRR's varslingsstatus) and alerts both call it.
 */
export const CONTACT_VALID_MONTHS = 18;

/**
 * `now` minus `months` calendar months (UTC), clamped to the end of a shorter month: 31 August
 * minus 18 months is 28 (or 29) February, not 3 March.
 */
export function monthsBefore(now: Date, months: number): Date {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth() - months;
  const target = new Date(Date.UTC(y, m, 1, now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds(), now.getUTCMilliseconds()));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(now.getUTCDate(), lastDay));
  return target;
}

/** True when the later of updatedAt and verifiedAt is no older than 18 months before `now`. */
export function contactUsable(updatedAt: Date | null | undefined, verifiedAt: Date | null | undefined, now: Date): boolean {
  const latest = Math.max(updatedAt?.getTime() ?? -Infinity, verifiedAt?.getTime() ?? -Infinity);
  if (latest === -Infinity) return false;
  return latest >= monthsBefore(now, CONTACT_VALID_MONTHS).getTime();
}
