import { randomBytes } from 'node:crypto';
import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService } from '../../helpers/service.js';
import { letter, multipart, newKey, PDF, PERSONS, seedRegistry, SENDER, type FilePart } from './fixtures.js';

const MAX = 200_000;

// Every case both ways a letter is read (docs/ingestion.md): whole, in memory (a small body, the
// default here) and streamed (INTAKE_IN_MEMORY_MAX_BYTES=0): the same problem for the same fault.
const WAYS = [
  ['read in memory', {}],
  ['streamed', { INTAKE_IN_MEMORY_MAX_BYTES: '0' }],
] as const;

for (const [way, env] of WAYS) t.test(`malformed letters get a 4xx problem, never a 5xx, and leave nothing behind (${way})`, async (t) => {
  const svc = await testService(t, service, { env: { MESSAGE_MAX_BYTES: String(MAX), MESSAGE_MAX_ATTACHMENTS: '3', ...env } });
  const db = svc.deps.db.kysely;
  await seedRegistry(db);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  const pdf = (name = 'vedtak.pdf'): FilePart => ({ name, content: PDF(2000) });
  const doc = (name: string, mime: string, main?: boolean) => ({ name, mime, ...(main === undefined ? {} : { main }) });

  const raw = (payload: Buffer | string, contentType?: string) =>
    svc.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': newKey(), ...(contentType ? { 'content-type': contentType } : {}) },
      payload,
    });
  const form = (message: unknown, files: FilePart[], opts: Parameters<typeof multipart>[2] = {}) => {
    const b = multipart(message, files, opts);
    return raw(b.payload, b.contentType);
  };

  const big = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(MAX)]);
  const boundary = '----x';
  const cases: [string, () => ReturnType<typeof raw>, number, string][] = [
    ['message is not JSON', () => form(null, [pdf()], { rawMessage: '{"recipient": ' }), 400, 'ingestion/invalid-message'],
    // The multipart parser drops a JSON-typed field that does not parse, so the file comes first.
    ['JSON-typed message part is not JSON', () => form(null, [pdf()], { rawMessage: '{nope', messageContentType: 'application/json' }), 400, 'ingestion/message-part-missing'],
    ['message is a JSON array', () => form([1, 2], [pdf()]), 400, 'ingestion/invalid-message'],
    ['no parts at all', () => raw(`--${boundary}--\r\n`, `multipart/form-data; boundary=${boundary}`), 400, 'ingestion/message-part-missing'],
    ['file part first', () => raw(multipartFileFirst(boundary), `multipart/form-data; boundary=${boundary}`), 400, 'ingestion/message-part-missing'],
    ['declared document missing', () => form(letter(), []), 400, 'ingestion/missing-document'],
    ['file under another name', () => form(letter(), [{ name: 'x.pdf', content: PDF(100) }]), 400, 'ingestion/missing-document'],
    ['extra file part', () => form(letter(), [pdf(), pdf('extra.pdf')]), 400, 'ingestion/unexpected-part'],
    ['securityLevel as a string', () => form(letter({ securityLevel: '4' }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['securityLevel 2', () => form(letter({ securityLevel: 2 }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['unknown field', () => form(letter({ priority: 'high' }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['unknown field in a document', () => form(letter({ documents: [{ ...doc('vedtak.pdf', 'application/pdf'), size: 1 }] }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['title too long', () => form(letter({ title: 'x'.repeat(256) }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['empty title', () => form(letter({ title: '' }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['language xx', () => form(letter({ language: 'xx' }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['SMS text over 160', () => form(letter({ notifications: { sms: { text: 'x'.repeat(161) } } }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['repeatAfterDays out of range', () => form(letter({ notifications: { repeatAfterDays: [30] } }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['availableAt not a date', () => form(letter({ availableAt: 'tomorrow' }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['no documents', () => form(letter({ documents: [] }), []), 400, 'ingestion/invalid-message'],
    ['invalid personId', () => form(letter({ recipient: { personId: '12345678901' } }), [pdf()]), 400, 'ingestion/invalid-person-id'],
    ['personId a number', () => form(letter({ recipient: { personId: 12345678901 } }), [pdf()]), 400, 'ingestion/invalid-message'],
    ['MIME not allowed', () => form(letter({ documents: [doc('prog.exe', 'application/x-msdownload')] }), [{ name: 'prog.exe', content: Buffer.from('MZ') }]), 415, 'ingestion/document-type-not-allowed'],
    ['PDF that is not a PDF', () => form(letter(), [{ name: 'vedtak.pdf', content: Buffer.from('MZ\x90\x00 not a pdf at all') }]), 422, 'ingestion/document-content-mismatch'],
    ['PNG that is a PDF', () => form(letter({ documents: [doc('bilde.png', 'image/png')] }), [{ name: 'bilde.png', content: PDF(500) }]), 422, 'ingestion/document-content-mismatch'],
    ['text with NUL bytes', () => form(letter({ documents: [doc('vedtak.pdf', 'application/pdf'), doc('a.txt', 'text/plain')] }), [pdf(), { name: 'a.txt', content: Buffer.concat([Buffer.alloc(300, 'a'), Buffer.from([0]), Buffer.alloc(10, 'b')]) }]), 422, 'ingestion/document-content-mismatch'],
    ['empty document', () => form(letter(), [{ name: 'vedtak.pdf', content: Buffer.alloc(0) }]), 422, 'ingestion/document-content-mismatch'],
    ['HTML that is not markup', () => form(letter({ documents: [doc('a.html', 'text/html')] }), [{ name: 'a.html', content: Buffer.from('plain words') }]), 422, 'ingestion/document-content-mismatch'],
    ['over the size limit', () => form(letter(), [{ name: 'vedtak.pdf', content: big }]), 413, 'ingestion/letter-too-large'],
    ['over the size limit in total', () => form(letter({ documents: [doc('a.pdf', 'application/pdf'), doc('b.pdf', 'application/pdf')] }), [{ name: 'a.pdf', content: big.subarray(0, 150_000) }, { name: 'b.pdf', content: big.subarray(0, 150_000) }]), 413, 'ingestion/letter-too-large'],
    ['too many attachments', () => form(letter({ documents: ['a', 'b', 'c', 'd', 'e'].map((n) => doc(`${n}.pdf`, 'application/pdf')) }), []), 400, 'ingestion/too-many-documents'],
    ['path in a document name', () => form(letter({ documents: [doc('../etc/passwd', 'text/plain')] }), []), 400, 'ingestion/invalid-document-name'],
    ['hidden document name', () => form(letter({ documents: [doc('.htaccess', 'text/plain')] }), []), 400, 'ingestion/invalid-document-name'],
    ['reserved document name', () => form(letter({ documents: [doc('META-INF/x', 'text/plain')] }), []), 400, 'ingestion/invalid-document-name'],
    ['control character in a name', () => form(letter({ documents: [doc('a\u0007.pdf', 'application/pdf')] }), []), 400, 'ingestion/invalid-document-name'],
    ['same name twice', () => form(letter({ documents: [doc('a.pdf', 'application/pdf'), doc('A.pdf', 'application/pdf')] }), []), 400, 'ingestion/invalid-document-name'],
    ['two main documents', () => form(letter({ documents: [doc('a.pdf', 'application/pdf', true), doc('b.pdf', 'application/pdf', true)] }), []), 400, 'ingestion/invalid-message'],
    ['main document not first', () => form(letter({ documents: [doc('a.pdf', 'application/pdf'), doc('b.pdf', 'application/pdf', true)] }), []), 400, 'ingestion/invalid-message'],
    ['JSON body instead of multipart', () => raw(JSON.stringify(letter()), 'application/json'), 415, 'ingestion/multipart-required'],
    ['text/plain body', () => raw('hello', 'text/plain'), 415, 'ingestion/multipart-required'],
    ['XML body', () => raw('<a/>', 'application/xml'), 415, 'ingestion/multipart-required'], // the route's own 415 type, with the accepted list,
    ['multipart without boundary', () => raw('whatever', 'multipart/form-data'), 400, 'malformed-body'],
    ['truncated multipart', () => raw(multipart(letter(), [pdf()]).payload.subarray(0, 600), `multipart/form-data; boundary=nothere`), 400, 'malformed-body'],
    ['prototype field name', () => raw(`--${boundary}\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\n{}\r\n--${boundary}--\r\n`, `multipart/form-data; boundary=${boundary}`), 400, 'ingestion/unexpected-part'],
    ['second field after message', () => raw(twoFields(boundary), `multipart/form-data; boundary=${boundary}`), 400, 'ingestion/unexpected-part'],
  ];

  for (const [name, run, status, slug] of cases) {
    const res = await run();
    t.equal(res.statusCode, status, `${name}: ${res.body.slice(0, 300)}`);
    t.match(res.headers['content-type'], /^application\/problem\+json/, `${name}: problem+json`);
    t.equal(res.json().type, `https://postbud.dev/problems/${slug}`, name);
  }

  const counts = await db
    .selectNoFrom((eb) => [
      eb.selectFrom('messages').select((e) => e.fn.countAll<string>().as('n')).as('messages'),
      eb.selectFrom('packages').select((e) => e.fn.countAll<string>().as('n')).as('packages'),
      eb.selectFrom('deliveries').select((e) => e.fn.countAll<string>().as('n')).as('deliveries'),
      eb.selectFrom('idempotency_keys').select((e) => e.fn.countAll<string>().as('n')).as('keys'),
    ])
    .executeTakeFirstOrThrow();
  t.same(counts, { messages: '0', packages: '0', deliveries: '0', keys: '0' }, 'nothing half-written');

  const ok = await form(letter({ recipient: { personId: PERSONS.digital } }), [pdf()]);
  t.equal(ok.statusCode, 201, 'the service still works afterwards');

  // The message part may also come as a file part (curl -F message=@message.json).
  const asFile = await form(letter(), [pdf()], { messageAsFile: true });
  t.equal(asFile.statusCode, 201, asFile.body);
  // Every allowed type with real magic bytes goes through.
  const zip = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(26), Buffer.from('mimetypeapplication/vnd.oasis.opendocument.text')]);
  const docs = [
    ['a.pdf', 'application/pdf', PDF(300)],
    ['b.html', 'text/html', Buffer.from('\ufeff  <html><body>Hei</body></html>')],
    ['c.png', 'image/png', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(200)])],
  ] as const;
  const mixed = await form(letter({ documents: docs.map(([n, m]) => doc(n, m)) }), docs.map(([n, , c]) => ({ name: n, content: c })));
  t.equal(mixed.statusCode, 201, mixed.body);
  const odt = await form(letter({ documents: [doc('a.pdf', 'application/pdf'), doc('b.odt', 'application/vnd.oasis.opendocument.text'), doc('c.jpg', 'image/jpeg')] }), [
    { name: 'a.pdf', content: PDF(300) },
    { name: 'b.odt', content: zip },
    { name: 'c.jpg', content: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(50)]) },
  ]);
  t.equal(odt.statusCode, 201, odt.body);
  const wrongOdf = await form(letter({ documents: [doc('b.ods', 'application/vnd.oasis.opendocument.spreadsheet')] }), [{ name: 'b.ods', content: zip }]);
  t.equal(wrongOdf.statusCode, 422, 'an ODF text document declared as a spreadsheet');
});

function multipartFileFirst(boundary: string): string {
  return `--${boundary}\r\nContent-Disposition: form-data; name="document"; filename="a.pdf"\r\n\r\n%PDF-1.7\r\n--${boundary}--\r\n`;
}

function twoFields(boundary: string): string {
  return (
    `--${boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${JSON.stringify(letter())}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="document"; filename="vedtak.pdf"\r\n\r\n%PDF-1.7 xxxxxxxxxxxxxxxxx\r\n--${boundary}--\r\n`
  );
}
