import { defineProblems } from '../../shared/errors/problem.js';

export const storageProblems = defineProblems('POSTBUD_STORAGE', {
  DELIVERY_NOT_FOUND: { slug: 'storage/delivery-not-found', status: 404, title: 'No such delivery for this provider' },
  PACKAGE_PURGED: { slug: 'storage/package-purged', status: 410, title: 'The package was acknowledged and its ciphertext has been purged' },
  INVALID_TRANSITION: { slug: 'storage/invalid-transition', status: 409, title: 'The delivery is not in a state that allows this' },
  CERTIFICATE_UNUSABLE: { slug: 'storage/certificate-unusable', status: 409, title: 'The registered encryption certificate cannot be used' },
  HEAD_NOT_FOUND: { slug: 'storage/head-not-found', status: 404, title: 'No such signed tree head' },
  INVALID_HEAD_RANGE: { slug: 'storage/invalid-head-range', status: 400, title: 'The first head must not be larger than the second' },
  LOG_INCOMPLETE: { slug: 'storage/log-incomplete', status: 409, title: 'The evidence log is missing leaves of this head' },
  SECURITY_LEVEL_TOO_LOW: { slug: 'storage/security-level-too-low', status: 422, title: 'The letter was opened with a lower security level than it requires' },
  OPENED_BEFORE_AVAILABLE: { slug: 'storage/opened-before-available', status: 422, title: 'The letter cannot have been opened before its availableAt' },
  EVENT_IN_FUTURE: { slug: 'storage/event-in-future', status: 422, title: 'The event is dated in the future' },
  EVENT_BEFORE_DELIVERY: { slug: 'storage/event-before-delivery', status: 422, title: 'The event is dated before the hub offered the delivery' },
  PROVIDER_SUSPENDED: { slug: 'storage/provider-suspended', status: 403, title: 'The provider is suspended' },
});
