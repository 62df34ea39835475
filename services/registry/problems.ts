import { defineProblems } from '../../shared/errors/problem.js';

/** The registry's problem types (RFC 9457 `type` = https://postbud.dev/problems/<slug>). */
export const registryProblems = defineProblems('POSTBUD_REGISTRY', {
  INVALID_PERSON_ID: { slug: 'registry/invalid-person-id', status: 400, title: 'One or more personIds are not valid fødselsnummer or D-numbers' },
  INVALID_ORGNR: { slug: 'registry/invalid-orgnr', status: 400, title: 'The organisation number is not valid' },
  INVALID_CERTIFICATE: { slug: 'registry/invalid-certificate', status: 400, title: 'The certificate is not a usable encryption certificate' },
  INVALID_CONTACT: { slug: 'registry/invalid-contact', status: 400, title: 'The e-mail address or mobile number is not valid' },
  INVALID_IMPORT: { slug: 'registry/invalid-import', status: 400, title: 'The import has invalid lines; nothing was imported' },
  INVALID_TIME: { slug: 'registry/invalid-time', status: 400, title: 'A timestamp is not a valid ISO 8601 date-time' },
  PERSON_NOT_FOUND: { slug: 'registry/person-not-found', status: 404, title: 'The registry has no such person' },
  PERSON_DELETED: { slug: 'registry/person-deleted', status: 409, title: 'The person is deleted from the registry' },
  NO_CONTACT_POINT: { slug: 'registry/no-contact-point', status: 409, title: 'There is no such contact point to confirm' },
  MAILBOX_NOT_FOUND: { slug: 'registry/mailbox-not-found', status: 404, title: 'No such mailbox' },
  MAILBOX_CLOSED: { slug: 'registry/mailbox-closed', status: 409, title: 'The mailbox is closed' },
  MAILBOX_ADDRESS_TAKEN: { slug: 'registry/mailbox-address-taken', status: 409, title: 'The provider already uses this mailbox address for another person' },
  MAILBOX_EXISTS: { slug: 'registry/mailbox-exists', status: 409, title: 'The person already has an open mailbox at this provider' },
  PROVIDER_NOT_REGISTERED: { slug: 'registry/provider-not-registered', status: 403, title: 'The organisation is not a registered mailbox provider' },
  PROVIDER_SUSPENDED: { slug: 'registry/provider-suspended', status: 403, title: 'The provider is suspended' },
  PROVIDER_NOT_DIGITAL: { slug: 'registry/provider-not-digital', status: 403, title: 'Only digital mailbox providers hold mailboxes' },
  PROVIDER_UNAVAILABLE: { slug: 'registry/provider-unavailable', status: 409, title: 'The mailbox provider is not active' },
  PROVIDER_NOT_FOUND: { slug: 'registry/provider-not-found', status: 404, title: 'No such provider' },
  PROVIDER_EXISTS: { slug: 'registry/provider-exists', status: 409, title: 'A provider with this organisation number exists' },
  CERTIFICATE_REQUIRED: { slug: 'registry/certificate-required', status: 400, title: 'A digital provider needs an encryption certificate' },
  SENDER_NOT_FOUND: { slug: 'registry/sender-not-found', status: 404, title: 'No such sender' },
  SENDER_EXISTS: { slug: 'registry/sender-exists', status: 409, title: 'A sender with this organisation number exists' },
});
