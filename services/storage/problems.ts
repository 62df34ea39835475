import { defineProblems } from '../../shared/errors/problem.js';

export const storageProblems = defineProblems('POSTBUD_STORAGE', {
  JOB_NOT_FOUND: { slug: 'storage/job-not-found', status: 404, title: 'No such job in the queue' },
  JOB_NOT_FAILED: { slug: 'storage/job-not-failed', status: 409, title: 'Only failed jobs can be retried' },
  DELIVERY_NOT_FOUND: { slug: 'storage/delivery-not-found', status: 404, title: 'No such delivery for this provider' },
  PACKAGE_PURGED: { slug: 'storage/package-purged', status: 410, title: 'The package was acknowledged and its ciphertext has been purged' },
  INVALID_TRANSITION: { slug: 'storage/invalid-transition', status: 409, title: 'The delivery is not in a state that allows this' },
  CERTIFICATE_UNUSABLE: { slug: 'storage/certificate-unusable', status: 409, title: 'The registered encryption certificate cannot be used' },
  HEAD_NOT_FOUND: { slug: 'storage/head-not-found', status: 404, title: 'No such signed tree head' },
  INVALID_HEAD_RANGE: { slug: 'storage/invalid-head-range', status: 400, title: 'The first head must not be larger than the second' },
  LOG_INCOMPLETE: { slug: 'storage/log-incomplete', status: 409, title: 'The evidence log is missing leaves of this head' },
  DELIVERY_CANCELLED: { slug: 'storage/delivery-cancelled', status: 409, title: 'The sender cancelled this delivery before it was acknowledged' },
  NO_ACTIVE_MAILBOX: { slug: 'storage/no-active-mailbox', status: 409, title: 'Letters are moved to the active digital mailbox, and there is none' },
  NO_PREVIOUS_PROVIDER: { slug: 'storage/no-previous-provider', status: 409, title: 'No previous provider holds letters delivered to this citizen' },
  MOVE_IN_PROGRESS: { slug: 'storage/move-in-progress', status: 409, title: 'A move of this citizen\'s letters is already in progress' },
  MOVE_NOT_FOUND: { slug: 'storage/move-not-found', status: 404, title: 'No such move for this citizen' },
  EXPORT_NOT_FOUND: { slug: 'storage/export-not-found', status: 404, title: 'No such export request for this provider' },
  EXPORT_CLOSED: { slug: 'storage/export-closed', status: 409, title: 'This export request is already answered or its move has ended' },
  EXPORT_INVALID: { slug: 'storage/export-invalid', status: 422, title: 'The exported package is not the letter the hub sealed, or not sealed for the hub transport certificate' },
  PROVIDER_SUSPENDED: { slug: 'storage/provider-suspended', status: 403, title: 'The provider is suspended' },
});
