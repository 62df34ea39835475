import { createHash, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import type { Config } from '../../shared/config/config.js';
import { decryptContent, openEnvelope } from '../../shared/crypto/cms-open.js';
import { readZip } from '../../shared/crypto/zip-read.js';
import { fetchRetrying503 } from '../../shared/http/retry-after.js';
import { DEFAULT_REPEAT_AFTER_DAYS } from '../../services/notification/schedule.js';
import { seed, seededSenders } from './seed.js';

/**
 * `postbud demo`: one letter through the running system (`npm start`), as each party sees it.
 * Seeds when needed, sends a letter as an agency, pulls and decrypts it as the mailbox provider,
 * acknowledges it and reports it opened, then shows the agency's verified receipts and the
 * letter's timeline.
 */

/**
 * The demo's letter. It leaves `repeatAfterDays` out, so it shows the default behaviour: an alert
 * when the letter is delivered and a reminder on day 7 unless it has been opened by then.
 */
export function demoMessage(personId: string): DemoApi['letter'] {
  return {
    recipient: { personId },
    title: 'Velkommen til postbud',
    language: 'nb',
    securityLevel: 4,
    openReceipt: true,
    notifications: { email: { text: 'Du har fått et brev i din digitale postkasse.' } },
    documents: [{ name: 'brev.pdf', mime: 'application/pdf', main: true }],
  };
}

/** What a letter's `notifications` will do, in words (the notification service's rule). */
export function describeAlerts(n: { repeatAfterDays?: number[] } | undefined): string {
  if (!n) return 'no alerts asked for';
  const given = n.repeatAfterDays;
  const days = [...new Set(given && given.length > 0 ? given : DEFAULT_REPEAT_AFTER_DAYS)].sort((a, b) => a - b);
  const when = days.map((d) => (d === 0 ? 'when delivered' : `on day ${d}`));
  const how = given && given.length > 0 ? `repeatAfterDays [${given.join(', ')}]` : `repeatAfterDays left out = default [${DEFAULT_REPEAT_AFTER_DAYS.join(', ')}]`;
  const none = days[0] === 0 ? '' : 'no alert at delivery; ';
  return `alerts: ${none}${when.join(', then ')} unless opened (${how})`;
}

/** A one-page PDF saying hello. */
export function helloPdf(text: string): Buffer {
  const stream = `BT /F1 18 Tf 72 720 Td (${text.replace(/[()\\]/g, '')}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

class DemoError extends Error {}

type Delivery = { id: string; messageId: string; size: number; fingerprint: string; routing: string };
type Receipt = { id: string; type: string; messageId: string; jws: string };

/**
 * What the demo sends and what it reads from each answer. tests/shared/openapi-typegen.test.ts
 * checks these against TypeScript types generated from the committed OpenAPI documents: every
 * answer type there must fit what the demo reads, and every body the demo sends must fit the
 * documented request, so the documents are enough to write this client.
 */
export interface DemoApi {
  capabilities: { digital: { possible: boolean; provider: { orgnr: string; name: string } | null; mailboxAddress: string | null }; canNotify: boolean };
  letter: {
    recipient: { personId: string };
    title: string;
    language: 'nb';
    securityLevel: 4;
    openReceipt: boolean;
    notifications: { email: { text: string }; repeatAfterDays?: number[] };
    documents: { name: string; mime: string; main: boolean }[];
  };
  submitted: { id: string; route: string; status: string };
  deliveries: { deliveries: Delivery[] };
  event: { type: 'OPENED'; at: string; securityLevel: 4 };
  eventAnswer: { state: string };
  ackAnswer: { state: string };
  receipts: { receipts: Receipt[] };
  receiptAck: { ids: string[] };
  acknowledged: { acknowledged: number };
  status: { status: string; eFormidlingStatus: string; timeline: { seq: number; type: string; at: string; hash: string }[] };
  jwks: { keys: { kid: string; kty: string }[] };
}

export async function demo(config: Config, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const host = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST;
  const I = `http://${host}:${config.INGESTION_PORT}`;
  const S = `http://${host}:${config.STORAGE_PORT}`;
  const step = (n: number, text: string) => out(`\n${n}. ${text}`);

  for (const [name, base] of [
    ['ingestion', I],
    ['storage', S],
  ]) {
    const ok = await fetch(`${base}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (!ok) throw new DemoError(`The ${name} service is not answering at ${base}. Start postbud first: npm start`);
  }

  const examplesFile = path.resolve(config.DATA_DIR, 'seed-persons.json');
  if (!existsSync(examplesFile)) {
    step(0, 'Seeding the registry (postbud seed --persons 200)');
    await seed(config, ['--persons', '200']);
  }
  const examples = JSON.parse(readFileSync(examplesFile, 'utf8')) as Record<string, string[]>;
  const { orgnr: sender, name: senderName } = seededSenders()[0]!;
  const asSender = { authorization: `Bearer ${await issueDevToken(config.DATA_DIR, { org: sender, scope: `${SCOPES.send} ${SCOPES.lookupDigitalPost}`, audience: config.AUTH_AUDIENCE })}` };
  const json = async <T>(res: Response): Promise<T> => {
    const body = (await res.json()) as T;
    if (!res.ok) throw new DemoError(`${res.status} from ${res.url}: ${JSON.stringify(body)}`);
    return body;
  };

  const personId = examples.mailbox?.[0];
  if (!personId) throw new DemoError(`No person with a mailbox in ${examplesFile}; run postbud seed`);
  step(1, `${senderName} (${sender}) asks whether person ${personId.slice(0, 6)}***** can get digital mail`);
  const caps = await json<DemoApi['capabilities']>(
    await fetch(`${I}/v1/capabilities/${personId}`, { headers: asSender }),
  );
  out(`   digital: ${caps.digital.possible} via ${caps.digital.provider?.name} (${caps.digital.mailboxAddress}), can be alerted: ${caps.canNotify}`);
  const provider = caps.digital.provider!;

  step(2, 'The agency sends a letter (multipart: message JSON + PDF), with an Idempotency-Key');
  const boundary = `----postbud-demo-${randomUUID()}`;
  const message: DemoApi['letter'] = demoMessage(personId);
  const pdf = helloPdf('Hei! Dette brevet kom gjennom postbud.');
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${JSON.stringify(message)}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="document"; filename="brev.pdf"\r\nContent-Type: application/pdf\r\n\r\n`),
    pdf,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const accepted = await json<DemoApi['submitted']>(
    // As an integrator should: a 503 with Retry-After (a busy intake) is retried under the same key.
    await fetchRetrying503(`${I}/v1/messages`, {
      method: 'POST',
      headers: { ...asSender, 'content-type': `multipart/form-data; boundary=${boundary}`, 'idempotency-key': randomUUID() },
      body: payload,
    }),
  );
  out(`   201 Created: message ${accepted.id}, route ${accepted.route}, status ${accepted.status}`);
  out(`   ${describeAlerts(message.notifications)}`);

  step(3, `${provider.name} lists its deliveries and downloads the package (CMS EnvelopedData)`);
  const asProvider = { authorization: `Bearer ${await issueDevToken(config.DATA_DIR, { org: provider.orgnr, scope: SCOPES.provider, audience: config.AUTH_AUDIENCE })}` };
  let delivery: Delivery | undefined;
  for (let i = 0; i < 20 && !delivery; i++) {
    const list = await json<DemoApi['deliveries']>(await fetch(`${S}/v1/deliveries?limit=500`, { headers: asProvider }));
    delivery = list.deliveries.find((d) => d.messageId === accepted.id);
    if (!delivery) await new Promise((r) => setTimeout(r, 250));
  }
  if (!delivery) throw new DemoError('The delivery did not show up in the provider listing');
  const cms = Buffer.from(await (await fetch(`${S}/v1/deliveries/${delivery.id}/package`, { headers: asProvider })).arrayBuffer());
  out(`   delivery ${delivery.id}: ${cms.length} bytes, SHA-256 ${delivery.fingerprint.slice(0, 16)}...`);
  const providerDir = path.resolve(config.DATA_DIR, 'providers', provider.orgnr);
  const keyFile = path.join(providerDir, 'key.pem');
  const recipient = { certificateDer: new X509Certificate(readFileSync(path.join(providerDir, 'cert.pem'))).raw, privateKey: createPrivateKey(readFileSync(keyFile)) };
  const entries = readZip(decryptContent(openEnvelope(cms, recipient)), { maxEntryBytes: 64 * 1024 * 1024 });
  out(`   decrypted with ${keyFile} (same as: openssl cms -decrypt -inform DER -recip cert.pem -inkey key.pem)`);
  out(`   ASiC-E package: ${[...entries.keys()].join(', ')}`);
  const jwks = (await json<DemoApi['jwks']>(await fetch(`${I}/.well-known/jwks.json`))) as JSONWebKeySet;
  const [h, , s] = entries.get('META-INF/manifest.jws')!.toString().split('.');
  await compactVerify(`${h}.${entries.get('manifest.json')!.toString('base64url')}.${s}`, createLocalJWKSet(jwks));
  out(`   manifest signature verified against the hub JWKS; brev.pdf is ${entries.get('brev.pdf')?.equals(pdf) ? 'identical to what was sent' : 'DIFFERENT'}`);
  // The route is signed per delivery, not in the manifest: re-addressing and print fallback change it.
  const routing = JSON.parse(Buffer.from((await compactVerify(delivery.routing, createLocalJWKSet(jwks))).payload).toString()) as { route: string; providerOrgnr: string; manifestSha256: string };
  const boundToManifest = routing.manifestSha256 === createHash('sha256').update(entries.get('manifest.json')!).digest('hex');
  out(`   routing signed by the hub: ${routing.route} to ${routing.providerOrgnr}, ${boundToManifest ? 'bound to this manifest' : 'NOT bound to this manifest'}`);

  step(4, `${provider.name} acknowledges the delivery and later reports it opened`);
  await json<DemoApi['ackAnswer']>(await fetch(`${S}/v1/deliveries/${delivery.id}/ack`, { method: 'POST', headers: asProvider }));
  const opened: DemoApi['event'] = { type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 };
  await json<DemoApi['eventAnswer']>(
    await fetch(`${S}/v1/deliveries/${delivery.id}/events`, {
      method: 'POST',
      headers: { ...asProvider, 'content-type': 'application/json' },
      body: JSON.stringify(opened),
    }),
  );
  out('   DELIVERED, then OPENED');

  step(5, 'The agency pulls its receipts, verifies each signature against the JWKS, and acknowledges them');
  let receipts: Receipt[] = [];
  for (let i = 0; i < 20; i++) {
    const pulled = await json<DemoApi['receipts']>(await fetch(`${I}/v1/receipts?limit=100`, { headers: asSender }));
    receipts = pulled.receipts.filter((r) => r.messageId === accepted.id);
    if (receipts.some((r) => r.type === 'OPENED')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const r of receipts) {
    const { protectedHeader } = await compactVerify(r.jws, createLocalJWKSet(jwks));
    out(`   ${r.type.padEnd(20)} signed by ${protectedHeader.kid} (${protectedHeader.alg}) - verified`);
  }
  const ackBody: DemoApi['receiptAck'] = { ids: receipts.map((r) => r.id) };
  const ack = await json<DemoApi['acknowledged']>(
    await fetch(`${I}/v1/receipts/ack`, { method: 'POST', headers: { ...asSender, 'content-type': 'application/json' }, body: JSON.stringify(ackBody) }),
  );
  out(`   acknowledged ${ack.acknowledged}`);

  step(6, 'The letter as the agency sees it now: GET /v1/messages/{id}');
  const status = await json<DemoApi['status']>(
    await fetch(`${I}/v1/messages/${accepted.id}`, { headers: asSender }),
  );
  out(`   status ${status.status} (eFormidling: ${status.eFormidlingStatus})`);
  for (const e of status.timeline) out(`   ${String(e.seq).padStart(2)}  ${e.at}  ${e.type.padEnd(18)} ${e.hash.slice(0, 16)}...`);
  out(`\nDone. Try the API docs at ${I}/docs and ${S}/docs.`);
}

export { DemoError };
