import { randomBytes, randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../../shared/db/database.js';
import { orgnrForName } from '../../../shared/ids/orgnr.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { createDevCertificate, type DevCertificate } from '../../../shared/registry/dev-certificate.js';

export const DIGIPOST = '984661185';
export const EBOKS = '922020175';
export const PRINTER = orgnrForName('Test Print AS');
export const SENDER = orgnrForName('Test Agency A');
export const OTHER_SENDER = orgnrForName('Test Agency B');
export const SUSPENDED_SENDER = orgnrForName('Test Agency Suspended');
export const UNKNOWN_ORG = orgnrForName('Not Onboarded');

const ids = syntheticPersonIdList(8, 1000);
export const PERSONS = {
  digital: ids[0]!,
  reserved: ids[1]!,
  noMailbox: ids[2]!,
  deleted: ids[3]!,
  notRegistered: ids[4]!,
  eboks: ids[5]!,
} as const;

let cert: DevCertificate | undefined;
/** One RSA certificate for every test provider (key generation is slow). */
export function providerCertificate(): DevCertificate {
  cert ??= createDevCertificate({ commonName: 'Digipost test', orgnr: DIGIPOST });
  return cert;
}

/** Registry rows the intake reads: senders, providers, persons and mailboxes. */
export async function seedRegistry(db: Kysely<Database>): Promise<void> {
  const der = providerCertificate().der;
  await sql`insert into senders (orgnr, name, status) values
    (${SENDER}, 'Test Agency A', 'active'), (${OTHER_SENDER}, 'Test Agency B', 'active'), (${SUSPENDED_SENDER}, 'Suspended Agency', 'suspended')
    on conflict do nothing`.execute(db);
  await sql`insert into providers (orgnr, name, kind, certificate, status) values
    (${DIGIPOST}, 'Digipost', 'digital', ${der}, 'active'),
    (${EBOKS}, 'e-Boks', 'digital', ${der}, 'active'),
    (${PRINTER}, 'Test Print', 'print', null, 'active')
    on conflict do nothing`.execute(db);
  const now = new Date();
  await sql`insert into persons (person_id, status, reserved, reserved_at, language, email, email_updated_at) values
    (${PERSONS.digital}, 'ACTIVE', false, null, 'nb', 'ola@example.no', ${now}),
    (${PERSONS.reserved}, 'ACTIVE', true, ${now}, 'nb', null, null),
    (${PERSONS.noMailbox}, 'ACTIVE', false, null, 'nn', null, null),
    (${PERSONS.deleted}, 'DELETED', false, null, null, null, null),
    (${PERSONS.eboks}, 'ACTIVE', false, null, 'en', null, null)
    on conflict do nothing`.execute(db);
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values
    (${PERSONS.digital}, ${DIGIPOST}, 'ola.nordmann#1', true),
    (${PERSONS.eboks}, ${EBOKS}, 'eboks-42', true)
    on conflict do nothing`.execute(db);
}

export const PDF = (size = 10 * 1024): Buffer => Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(Math.max(0, size - 9))]);

export interface FilePart {
  name: string;
  content: Buffer;
  /** Defaults to `name`. */
  filename?: string;
  field?: string;
  contentType?: string;
}

/** A multipart/form-data body built by hand, so tests can also build broken ones. */
export function multipart(message: unknown, files: FilePart[], opts: { messageAsFile?: boolean; messageContentType?: string; rawMessage?: string } = {}) {
  const boundary = `----postbud${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  const text = opts.rawMessage ?? JSON.stringify(message);
  if (opts.messageAsFile) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="message"; filename="message.json"\r\nContent-Type: application/json\r\n\r\n${text}\r\n`));
  } else {
    const ct = opts.messageContentType ? `Content-Type: ${opts.messageContentType}\r\n` : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="message"\r\n${ct}\r\n${text}\r\n`));
  }
  for (const f of files) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${f.field ?? 'document'}"; filename="${f.filename ?? f.name}"\r\nContent-Type: ${f.contentType ?? 'application/octet-stream'}\r\n\r\n`,
      ),
      f.content,
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export function letter(over: Record<string, unknown> = {}) {
  return {
    recipient: { personId: PERSONS.digital },
    title: 'Vedtak om tilskudd',
    language: 'nb',
    securityLevel: 4,
    openReceipt: true,
    notifications: { email: { text: 'Du har fått post' }, sms: { text: 'Du har fått post' }, repeatAfterDays: [7] },
    documents: [{ name: 'vedtak.pdf', mime: 'application/pdf', main: true }],
    ...over,
  };
}

export const PRINT = {
  recipient: { name: 'Ola Nordmann', addressLines: ['Storgata 1'], postalCode: '0155', city: 'Oslo' },
  returnAddress: { name: 'Test Agency A', addressLines: ['Postboks 1'], postalCode: '8910', city: 'Brønnøysund' },
  color: 'BW',
  class: 'B',
  returnHandling: 'SHRED',
};

export const newKey = () => randomUUID();
