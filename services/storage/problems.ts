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
  PROVIDER_SUSPENDED: { slug: 'storage/provider-suspended', status: 403, title: 'The provider is suspended' },
});
