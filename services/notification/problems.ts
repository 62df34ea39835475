import { defineProblems } from '../../shared/errors/problem.js';

/** The notification service's problem types (RFC 9457 `type` = https://postbud.dev/problems/<slug>). */
export const notificationProblems = defineProblems('POSTBUD_NOTIFICATION', {
  SENDER_NOT_REGISTERED: { slug: 'notification/sender-not-registered', status: 403, title: 'The organisation is not a registered sender' },
  SENDER_SUSPENDED: { slug: 'notification/sender-suspended', status: 403, title: 'The sender is suspended' },
  JOB_NOT_FOUND: { slug: 'notification/job-not-found', status: 404, title: 'No such job in the queue' },
  JOB_NOT_FAILED: { slug: 'notification/job-not-failed', status: 409, title: 'Only failed jobs can be retried' },
});
