import { createHash } from 'node:crypto';
import multipartPlugin from '@fastify/multipart';
import Fastify from 'fastify';
import t from 'tap';
import { multipartLimits, Parts, partsError, type PartSource } from '../../../services/ingestion/intake/parts.js';
import { UploadWatchdog } from '../../../services/ingestion/intake/uploads.js';
import { readWholeBody, WholeBodyParts } from '../../../services/ingestion/intake/whole-body.js';

/**
 * A letter read whole (intake/whole-body.ts) must come apart exactly as the streamed way
 * (@fastify/multipart) takes it: the same parts in the same order, the same bytes, and the same
 * problem where the body goes wrong. Differential: every body below, hand-written odd cases and
 * a seeded set of truncated and corrupted letters, goes through both, and both answers must be
 * equal.
 */

const LIMITS = multipartLimits({ MESSAGE_MAX_BYTES: 3000, MESSAGE_MAX_ATTACHMENTS: 3 });

interface Seen {
  parts: Record<string, unknown>[];
  end: string | null;
}

async function drain(parts: PartSource): Promise<Seen> {
  const out: Record<string, unknown>[] = [];
  try {
    for (let p = await parts.next(); p; p = await parts.next()) {
      if (p.type === 'field') {
        out.push({ type: 'field', name: p.fieldname, value: p.value, truncated: p.valueTruncated });
        continue;
      }
      const hash = createHash('sha256');
      let size = 0;
      try {
        for await (const chunk of p.file as AsyncIterable<Buffer>) {
          hash.update(chunk);
          size += chunk.length;
        }
      } catch (err) {
        throw partsError(err);
      }
      out.push({ type: 'file', name: p.fieldname, filename: p.filename, mimetype: p.mimetype, size, sha256: hash.digest('hex') });
    }
    return { parts: out, end: null };
  } catch (err) {
    const problem = partsError(err);
    return { parts: out, end: `${problem.statusCode} ${problem.problemType.slug}: ${problem.message}` };
  }
}

async function harness() {
  const app = Fastify({ bodyLimit: 10 * 1024 * 1024 });
  await app.register(multipartPlugin, { limits: LIMITS });
  app.post('/streamed', async (request) => drain(new Parts(request, new UploadWatchdog(request.raw, 60_000, 60_000))));
  app.post('/whole', async (request) => {
    const watchdog = new UploadWatchdog(request.raw, 60_000, 60_000);
    const body = await readWholeBody(request.raw, watchdog);
    try {
      return await drain(new WholeBodyParts(body, request.headers, LIMITS, watchdog));
    } finally {
      watchdog.stop();
    }
  });
  return app;
}

const B = 'xBOUNDARYx';
const CT = `multipart/form-data; boundary=${B}`;
const MESSAGE = `--${B}\r\nContent-Disposition: form-data; name="message"\r\n\r\n{"title":"Vedtak"}\r\n`;
const file = (headers: string, content: string | Buffer) => Buffer.concat([Buffer.from(`--${B}\r\n${headers}\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n')]);
const doc = (filename: string, content: string | Buffer = '%PDF-1.7 tekst', type = 'application/pdf') => file(`Content-Disposition: form-data; name="document"; filename="${filename}"\r\nContent-Type: ${type}`, content);
const body = (...parts: (string | Buffer)[]) => Buffer.concat([...parts.map((p) => Buffer.from(p)), Buffer.from(`--${B}--\r\n`)]);
const LETTER = body(MESSAGE, doc('vedtak.pdf'), doc('vedlegg.txt', 'Hei og hå\n', 'text/plain'));

const cases: [string, Buffer, string?][] = [
  ['a letter', LETTER],
  ['a UTF-8 file name', body(MESSAGE, doc('vedlegg æøå.pdf'))],
  ['an RFC 5987 file name', body(MESSAGE, file(`Content-Disposition: form-data; name="document"; filename*=UTF-8''vedlegg%20%C3%A6%C3%B8%C3%A5.pdf\r\nContent-Type: application/pdf`, '%PDF-1.7'))],
  ['a quoted file name with an escaped quote', body(MESSAGE, file('Content-Disposition: form-data; name="document"; filename="a \\"b\\".pdf"', '%PDF-1.7'))],
  ['a path in the file name', body(MESSAGE, doc('C:\\\\Users\\\\kari\\\\vedtak.pdf'), doc('../../etc/vedtak.pdf'))],
  ['a folded header', body(MESSAGE, file('Content-Disposition: form-data;\r\n name="document"; filename="vedtak.pdf"\r\nContent-Type: application/pdf', '%PDF-1.7'))],
  ['lower-case header names and no Content-Type', body(MESSAGE, file('content-disposition: form-data; name="document"; filename="x.pdf"', '%PDF-1.7'))],
  ['a preamble and an epilogue', Buffer.concat([Buffer.from('preamble text\r\n'), LETTER, Buffer.from('epilogue\r\n')])],
  ['transport padding after a boundary', Buffer.from(LETTER.toString('latin1').replace(`--${B}\r\n`, `--${B}  \t\r\n`), 'latin1')],
  ['a message field in Latin-1', body(`--${B}\r\nContent-Disposition: form-data; name="message"\r\nContent-Type: text/plain; charset=latin1\r\n\r\n`, Buffer.from('{"title":"bl\xe5"}', 'latin1'), '\r\n')],
  ['a JSON-typed message', body(`--${B}\r\nContent-Disposition: form-data; name="message"\r\nContent-Type: application/json\r\n\r\n{"a":[1,2]}\r\n`, doc('x.pdf'))],
  ['a JSON-typed message that is not JSON', body(`--${B}\r\nContent-Disposition: form-data; name="message"\r\nContent-Type: application/json\r\n\r\n{nope\r\n`, doc('x.pdf'))],
  ['a JSON-typed message with __proto__', body(`--${B}\r\nContent-Disposition: form-data; name="message"\r\nContent-Type: application/json\r\n\r\n{"__proto__":{"x":1}}\r\n`, doc('x.pdf'))],
  ['a field named __proto__', body(`--${B}\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\nx\r\n`, doc('x.pdf'))],
  ['a file part named constructor', body(MESSAGE, file('Content-Disposition: form-data; name="constructor"; filename="x.pdf"', 'x'))],
  ['two fields', body(MESSAGE, MESSAGE, doc('x.pdf'))],
  ['too many files', body(MESSAGE, doc('a.pdf'), doc('b.pdf'), doc('c.pdf'), doc('d.pdf'), doc('e.pdf'))],
  ['too many parts', body(MESSAGE, doc('a.pdf'), doc('b.pdf'), doc('c.pdf'), doc('d.pdf'), MESSAGE, MESSAGE)],
  ['a file over the size limit', body(MESSAGE, doc('big.pdf', Buffer.alloc(3500, 'a')))],
  ['a message over the field limit', body(`--${B}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${'x'.repeat(300 * 1024)}\r\n`)],
  ['a part without Content-Disposition', body(MESSAGE, file('Content-Type: application/pdf', '%PDF'), doc('x.pdf'))],
  ['a part that is not form-data', body(MESSAGE, file('Content-Disposition: attachment; name="document"; filename="x.pdf"', '%PDF'), doc('x.pdf'))],
  ['an octet-stream part without a file name', body(MESSAGE, file('Content-Disposition: form-data; name="document"\r\nContent-Type: application/octet-stream', 'bytes'))],
  ['more header lines than allowed', body(MESSAGE, file(['Content-Disposition: form-data; name="document"; filename="x.pdf"', ...Array.from({ length: 60 }, (_, i) => `X-${i}: ${i}`)].join('\r\n'), '%PDF'))],
  ['a name with a bare line break', body(MESSAGE, file('Content-Disposition: form-data; name="docu\rment"; filename="x.pdf"', '%PDF'), doc('y.pdf'))],
  ['no close delimiter', Buffer.concat([Buffer.from(MESSAGE), doc('x.pdf')])],
  ['cut inside a document', LETTER.subarray(0, LETTER.indexOf('%PDF') + 5)],
  ['cut inside the headers', LETTER.subarray(0, LETTER.indexOf('filename') + 3)],
  ['only the close delimiter', Buffer.from(`--${B}--\r\n`)],
  ['an empty body', Buffer.alloc(0)],
  ['bare LF line endings', Buffer.from(LETTER.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')],
  ['another boundary than declared', Buffer.from(LETTER.toString('latin1').replaceAll(B, 'yOTHERy'), 'latin1')],
  ['a quoted boundary parameter', LETTER, `multipart/form-data; boundary="${B}"`],
  ['no boundary parameter', LETTER, 'multipart/form-data'],
  ['a boundary parameter in capitals, with a charset', LETTER, `multipart/form-data; charset=utf-8; BOUNDARY=${B}`],
];

/** A small deterministic PRNG (mulberry32), so a failing variant can be found again by its seed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(20261202);
for (let i = 0; i < 60; i++) {
  const cut = Math.floor(random() * LETTER.length);
  cases.push([`variant ${i}: cut at byte ${cut}`, LETTER.subarray(0, cut)]);
}
const SPECIAL = Buffer.from('\r\n-"; =:\\\t\0');
for (let i = 0; i < 80; i++) {
  const copy = Buffer.from(LETTER);
  const flips = 1 + Math.floor(random() * 3);
  const at: number[] = [];
  for (let f = 0; f < flips; f++) {
    const pos = Math.floor(random() * copy.length);
    copy[pos] = random() < 0.5 ? SPECIAL[Math.floor(random() * SPECIAL.length)]! : Math.floor(random() * 256);
    at.push(pos);
  }
  cases.push([`variant ${60 + i}: bytes changed at ${at.join(', ')}`, copy]);
}

t.test('a body read whole comes apart exactly as the streamed parser takes it', async (t) => {
  const app = await harness();
  t.teardown(() => app.close());
  let refused = 0;
  for (const [name, payload, contentType] of cases) {
    const send = (way: string) => app.inject({ method: 'POST', url: `/${way}`, headers: { 'content-type': contentType ?? CT }, payload });
    const [streamed, whole] = await Promise.all([send('streamed'), send('whole')]);
    t.equal(whole.statusCode, streamed.statusCode, `${name}: status`);
    if (streamed.statusCode !== 200) {
      t.equal(whole.body, streamed.body, `${name}: the same problem`);
      continue;
    }
    const a = streamed.json() as Seen;
    const b = whole.json() as Seen;
    t.same(b, a, name);
    if (a.end) refused++;
  }
  // The corpus must exercise both sides of the contract, not only bodies that parse.
  t.ok(refused >= 20, `${refused} of ${cases.length} bodies end in a problem`);
  t.ok(cases.length - refused >= 20, `${cases.length - refused} parse`);
});
