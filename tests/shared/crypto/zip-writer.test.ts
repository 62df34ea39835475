import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import t from 'tap';
import { buildPackage, buildPackageInMemory, type DocumentData, type DocumentInput } from '../../../shared/crypto/asice.js';
import { collect, manifestInput, unzip } from '../../services/storage/fixtures.js';

const run = promisify(execFile);

async function pack(documents: DocumentInput[], compressionLevel?: number): Promise<Buffer> {
  const built = buildPackage(manifestInput(), documents, async () => 'header..signature', { compressionLevel });
  const zip = await collect(built.stream);
  await built.manifest;
  return zip;
}

const incompressible = randomBytes(300_000);
const text = Buffer.from('Vedtak om bostøtte for januar. '.repeat(10_000));
const docs = (): DocumentInput[] => [
  { name: 'vedtak.pdf', mime: 'application/pdf', stream: Readable.from([incompressible.subarray(0, 100_000), incompressible.subarray(100_000)]) },
  { name: 'vedlegg æøå.txt', mime: 'text/plain', stream: Readable.from([text.subarray(0, 1000), text.subarray(1000)]) },
  { name: 'tom.txt', mime: 'text/plain', stream: Readable.from([]) },
];

t.test('documents are always method 8; only those that compress are compressed', async (t) => {
  const zip = await pack(docs());
  t.equal(zip.subarray(30, 38).toString(), 'mimetype', 'mimetype first, no extra field');
  t.equal(zip.subarray(38, 69).toString(), 'application/vnd.etsi.asic-e+zip');
  const entries = await unzip(zip);
  t.same(entries.map((e) => [e.name, e.compressionMethod]), [
    ['mimetype', 0],
    ['vedtak.pdf', 8],
    ['vedlegg æøå.txt', 8],
    ['tom.txt', 8],
    ['manifest.json', 0], // stored: a small JSON is not worth a zlib stream
    ['META-INF/manifest.jws', 0],
  ]);
  t.same(entries[1]!.data, incompressible);
  t.same(entries[2]!.data, text);
  t.equal(entries[3]!.data.length, 0);
  // The random document costs only stored-block headers; the text shrinks to a fraction.
  t.ok(zip.length < incompressible.length + text.length / 10, `${zip.length} bytes`);

  const stored = await pack(docs(), 0);
  t.ok(stored.length > incompressible.length + text.length, 'level 0 stores everything');
  t.same((await unzip(stored)).map((e) => e.compressionMethod), [0, 8, 8, 8, 0, 0]);
});

const inMemory = async (documents: DocumentData[], compressionLevel?: number) =>
  (await buildPackageInMemory(manifestInput(), documents, async () => 'header..signature', { compressionLevel })).zip;
const inMemoryDocs = (): DocumentData[] => [
  { name: 'vedtak.pdf', mime: 'application/pdf', data: incompressible },
  { name: 'vedlegg æøå.txt', mime: 'text/plain', data: text },
];

t.test('a package built in memory has the entries, methods and bytes of a streamed one, with sizes in the local headers', async (t) => {
  const streamed = await unzip(await pack(docs().slice(0, 2)));
  const zip = await inMemory(inMemoryDocs());
  const entries = await unzip(zip);
  t.same(
    entries.map((e) => [e.name, e.compressionMethod, e.data.length]),
    streamed.map((e) => [e.name, e.compressionMethod, e.data.length]),
  );
  t.same(entries[1]!.data, incompressible);
  t.same(entries[2]!.data, text);
  t.equal(zip.readUInt16LE(zip.indexOf('vedtak.pdf') - 30 + 6) & 0x0008, 0, 'no data descriptor: sizes are known up front');
  t.ok(zip.length < incompressible.length + text.length / 10, 'the random document is stored, the text compressed');
  t.same((await unzip(await inMemory(inMemoryDocs(), 0))).map((e) => e.compressionMethod), [0, 8, 8, 0, 0], 'level 0 stores the documents in deflate stored blocks');
  await t.rejects(inMemory([inMemoryDocs()[0]!, { ...inMemoryDocs()[0]! }]), /appears twice/, 'the name rules of a streamed package');
  await t.rejects(inMemory([]), /at least one document/);
});

t.test("Java's ZipInputStream reads the package (data descriptors after deflated entries)", { skip: !existsSync('/usr/bin/java') && 'no java' }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postbud-zip-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'p.zip'), await pack(docs()));
  writeFileSync(
    path.join(dir, 'Check.java'),
    `import java.io.*; import java.util.zip.*;
public class Check { public static void main(String[] a) throws Exception {
  try (ZipInputStream z = new ZipInputStream(new FileInputStream(a[0]), java.nio.charset.StandardCharsets.UTF_8)) {
    ZipEntry e; byte[] b = new byte[65536];
    while ((e = z.getNextEntry()) != null) { long n = 0; int r; while ((r = z.read(b)) > 0) n += r; System.out.println(e.getName() + " " + n); } } } }`,
  );
  const { stdout } = await run('/usr/bin/java', [path.join(dir, 'Check.java'), path.join(dir, 'p.zip')]);
  const lines = stdout.trim().split('\n');
  t.same(lines.slice(0, 4), ['mimetype 31', 'vedtak.pdf 300000', `vedlegg æøå.txt ${text.length}`, 'tom.txt 0']);
  t.equal(lines.length, 6);
  writeFileSync(path.join(dir, 'm.zip'), await inMemory(inMemoryDocs()));
  const built = await run('/usr/bin/java', [path.join(dir, 'Check.java'), path.join(dir, 'm.zip')]);
  t.same(built.stdout.trim().split('\n').slice(0, 3), ['mimetype 31', 'vedtak.pdf 300000', `vedlegg æøå.txt ${text.length}`], 'and the one built in memory');
});
