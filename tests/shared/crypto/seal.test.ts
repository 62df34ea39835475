import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import t from 'tap';
import { PackageError } from '../../../shared/crypto/asice.js';
import { PostgresBlobStore, type BlobStore } from '../../../shared/storage/blob-store.js';
import { storageContext } from '../../../shared/storage/context.js';
import { createDelivery, DeliveryInputError } from '../../../shared/storage/deliveries.js';
import { decryptPackage, openPackageKey, PackageGoneError, sealPackage, sealPackageInMemory, writePendingPackage } from '../../../shared/storage/packages.js';
import { testDeps } from '../../helpers/service.js';
import { collect, docStream, manifestInput, unzip } from '../../services/storage/fixtures.js';

t.test('sealing', async (t) => {
  const deps = await testDeps(t);
  const base = storageContext(deps);
  const db = deps.db.kysely;
  const counts = async () => ({
    packages: Number((await db.selectFrom('packages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
    chunks: Number((await db.selectFrom('package_chunks').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
  });

  await t.test('a large document streams through in chunks and comes back intact; no plaintext is stored', async (t) => {
    const ctx = { ...base, blobs: new PostgresBlobStore(db, 64 * 1024, 3) };
    const marker = Buffer.from('PLAINTEXT-MARKER-0123456789');
    const big = docStream(600_000, 7);
    const bigHash = createHash('sha256');
    const expected = await collect(docStream(600_000, 7));
    bigHash.update(expected);
    const sealed = await sealPackage(ctx, {
      manifest: manifestInput(),
      compressionLevel: 0,
      documents: (async function* () {
        yield { name: 'brev.pdf', mime: 'application/pdf', stream: big };
        yield { name: 'marker.txt', mime: 'text/plain', stream: Readable.from([marker, marker]) };
      })(),
    });
    t.ok(sealed.chunks > 5, `${sealed.chunks} chunks`);
    t.equal(sealed.ciphertextSize % 16, 0);
    t.ok(sealed.ciphertextSize > sealed.zipSize && sealed.ciphertextSize <= sealed.zipSize + 16, 'CBC padding only');
    t.same(sealed.manifest.documents[0], { name: 'brev.pdf', mime: 'application/pdf', size: 600_000, sha256: bigHash.digest('hex') });
    const stored = await db.selectFrom('package_chunks').select('data').where('package_id', '=', sealed.packageId).execute();
    t.notOk(stored.some((c) => c.data.includes(marker)), 'the stored bytes hold no plaintext');
    const entries = await unzip(await collect(decryptPackage(ctx, sealed.packageId)));
    t.same(entries.find((e) => e.name === 'brev.pdf')!.data, expected);
    t.same(entries.find((e) => e.name === 'marker.txt')!.data, Buffer.concat([marker, marker]));
    const row = await db.selectFrom('packages').selectAll().where('id', '=', sealed.packageId).executeTakeFirstOrThrow();
    t.match(row, { status: 'SEALED', kek_id: base.keyring.currentId, chunk_count: sealed.chunks });
    t.notSame(row.wrapped_key, null);
  });

  await t.test('a small letter sealed in memory: one chunk, written only with the letter, no plaintext; a larger one streams into chunks', async (t) => {
    const before = await counts();
    const marker = Buffer.from('PLAINTEXT-MARKER-0123456789');
    const pdf = await collect(docStream(20_000, 3));
    const documents = [
      { name: 'brev.pdf', mime: 'application/pdf', data: pdf },
      { name: 'marker.txt', mime: 'text/plain', data: Buffer.concat([marker, marker]) },
    ];
    const sealed = await sealPackageInMemory(base, { manifest: manifestInput(), documents, deferWrite: true });
    t.same(await counts(), before, 'deferred: nothing written before the letter is');
    t.ok(sealed.pending, 'the package and its one chunk wait for the letter');
    t.equal(sealed.chunks, 1);
    t.equal(sealed.ciphertextSize % 16, 0);
    t.ok(sealed.ciphertextSize > sealed.zipSize && sealed.ciphertextSize <= sealed.zipSize + 16, 'CBC padding only');
    t.same(sealed.manifest.documents[0], { name: 'brev.pdf', mime: 'application/pdf', size: pdf.length, sha256: createHash('sha256').update(pdf).digest('hex') });
    t.notOk(sealed.pending!.data.includes(marker), 'the sealed bytes hold no plaintext');
    await writePendingPackage(db, sealed.pending!);
    const entries = await unzip(await collect(decryptPackage(base, sealed.packageId)));
    t.same(entries.find((e) => e.name === 'brev.pdf')!.data, pdf);
    t.same(entries.find((e) => e.name === 'marker.txt')!.data, Buffer.concat([marker, marker]));
    const manifestJson = entries.find((e) => e.name === 'manifest.json')!.data;
    t.equal(createHash('sha256').update(manifestJson).digest('hex'), sealed.manifestSha256, 'the recorded manifest hash is of the stored manifest');

    const small = { ...base, blobs: new PostgresBlobStore(db, 8 * 1024, 3) };
    const large = await sealPackageInMemory(small, { manifest: manifestInput(), documents, deferWrite: true });
    t.notOk(large.pending, 'past one chunk the package is written as it is sealed');
    t.ok(large.chunks > 1, `${large.chunks} chunks`);
    t.same((await unzip(await collect(decryptPackage(small, large.packageId)))).find((e) => e.name === 'brev.pdf')!.data, pdf);
  });

  await t.test('bad input leaves nothing behind', async (t) => {
    const before = await counts();
    const seal = (documents: { name: string; stream: Readable }[]) =>
      sealPackage(base, { manifest: manifestInput(), documents: documents.map((d) => ({ mime: 'application/pdf', ...d })) });
    await t.rejects(seal([]), PackageError, 'no documents');
    await t.rejects(seal([{ name: '../etc/passwd', stream: Readable.from([Buffer.from('x')]) }]), PackageError);
    await t.rejects(seal([{ name: 'manifest.json', stream: Readable.from([Buffer.from('x')]) }]), PackageError);
    await t.rejects(seal([{ name: 'META-INF/x', stream: Readable.from([Buffer.from('x')]) }]), PackageError);
    await t.rejects(seal([{ name: '.hidden', stream: Readable.from([Buffer.from('x')]) }]), PackageError);
    await t.rejects(
      seal([
        { name: 'a.pdf', stream: Readable.from([Buffer.from('x')]) },
        { name: 'A.pdf', stream: Readable.from([Buffer.from('y')]) },
      ]),
      PackageError,
      'duplicate names',
    );
    const broken = new Readable({ read() {} });
    broken.push(Buffer.alloc(100_000, 1));
    setTimeout(() => broken.destroy(new Error('client went away')), 50);
    await t.rejects(seal([{ name: 'a.pdf', stream: broken }]), /client went away/, 'an upload that breaks off');
    t.same(await counts(), before, 'no package rows or chunks left');
  });

  await t.test('a failing blob store aborts the documents and cleans up', async (t) => {
    const before = await counts();
    const failing: BlobStore = {
      async put(_id, source) {
        for await (const _ of source) throw new Error('disk full');
        return { size: 0, chunks: 0 };
      },
      read: () => (async function* () {})(),
      delete: async () => undefined,
    };
    const doc = docStream(5_000_000);
    await t.rejects(sealPackage({ ...base, blobs: failing }, { manifest: manifestInput(), documents: [{ name: 'a.pdf', mime: 'application/pdf', stream: doc }] }), /disk full/);
    t.ok(doc.destroyed, 'the upload stream is stopped');
    t.same(await counts(), before);
  });

  await t.test('deliveries need their route\u2019s details; gone packages are refused', async (t) => {
    const sealed = await sealPackage(base, { manifest: manifestInput(), documents: [{ name: 'a.pdf', mime: 'application/pdf', stream: Readable.from([Buffer.from('%PDF')]) }] });
    const common = { messageId: randomUUID(), senderOrgnr: '974760673', personId: '01017012345', providerOrgnr: '984661185', title: 't', securityLevel: 3 as const, availableAt: new Date(), sealed };
    await t.rejects(createDelivery(db, base, { ...common, route: 'DIGITAL' }), DeliveryInputError);
    await t.rejects(createDelivery(db, base, { ...common, route: 'PRINT' }), DeliveryInputError);
    await t.rejects(openPackageKey(base, randomUUID()), PackageGoneError);
    const blobs = new PostgresBlobStore(db);
    await blobs.delete(sealed.packageId);
    await t.rejects(collect(blobs.read(sealed.packageId, 1)), /missing chunks/);
  });
});
