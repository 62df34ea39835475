import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { categoryOf, defaultSendersFile, DIGIPOST, EBOKS, PRINT_PROVIDER, seed, seedRegistry } from '../../../scripts/commands/seed.js';
import { UsageError } from '../../../scripts/commands/token.js';
import { loadConfig } from '../../../shared/config/config.js';
import { isValidOrgnr } from '../../../shared/ids/orgnr.js';
import { decodePersonId, isValidPersonId, syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { findPrintProvider, findRecipients } from '../../../shared/registry/recipients.js';
import { testDatabase } from '../../helpers/database.js';
import { testDataDir } from '../../helpers/service.js';

t.test('postbud seed', async (t) => {
  const { db, url } = await testDatabase(t);
  const dataDir = testDataDir(t);
  const sendersFile = path.join(dataDir, 'senders.txt');
  writeFileSync(sendersFile, 'Skatteetaten\nNAV\n\n# a comment\nOslo kommune\nNAV\n');
  const kysely = db.kysely;

  const first = await seedRegistry(kysely, { sendersFile, persons: 400, dataDir });
  t.same(first.senders, { total: 3, added: 3 });
  t.equal(first.persons.requested, 400);
  t.equal(first.persons.added, first.persons.registered);
  t.equal(first.persons.registered + first.persons.notRegistered, 400);

  await t.test('senders get valid, distinct orgnrs', async (t) => {
    const senders = await kysely.selectFrom('senders').selectAll().orderBy('name').execute();
    t.same(senders.map((s) => s.name), ['NAV', 'Oslo kommune', 'Skatteetaten']);
    t.ok(senders.every((s) => isValidOrgnr(s.orgnr)));
    t.equal(new Set(senders.map((s) => s.orgnr)).size, 3);
  });

  await t.test('providers with development certificates whose keys stay under DATA_DIR', async (t) => {
    const providers = await kysely.selectFrom('providers').selectAll().orderBy('orgnr').execute();
    t.same(providers.map((p) => [p.orgnr, p.kind]).sort(), [[DIGIPOST.orgnr, 'digital'], [EBOKS.orgnr, 'digital'], [PRINT_PROVIDER.orgnr, 'print']].sort());
    for (const p of first.providers) {
      t.ok(p.key.startsWith(path.resolve(dataDir)), `${p.name} key under DATA_DIR`);
      const cert = new X509Certificate(readFileSync(p.certificate));
      t.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(p.key))), `${p.name}: the key matches the certificate`);
      const row = providers.find((r) => r.orgnr === p.orgnr)!;
      t.ok(row.certificate!.equals(cert.raw), 'the registry holds that certificate');
    }
    t.equal((await findPrintProvider(kysely))?.orgnr, PRINT_PROVIDER.orgnr);
  });

  await t.test('a realistic mix of persons', async (t) => {
    const ids = syntheticPersonIdList(400);
    const byId = await findRecipients(kysely, ids);
    const found = [...byId.values()];
    const count = (f: (r: (typeof found)[number]) => boolean) => found.filter(f).length;
    const withMailbox = count((r) => r.mailbox !== undefined);
    t.ok(withMailbox > 200, `most have a mailbox (${withMailbox})`);
    t.ok(count((r) => r.mailbox?.providerOrgnr === DIGIPOST.orgnr) > 0 && count((r) => r.mailbox?.providerOrgnr === EBOKS.orgnr) > 0, 'at both providers');
    t.ok(count((r) => r.reserved) > 10, 'some reserved');
    t.ok(count((r) => r.status === 'ACTIVE' && !r.reserved && !r.canNotify) > 10, 'some with outdated contact info');
    t.equal(count((r) => r.status === 'NOT_REGISTERED'), first.persons.notRegistered);
    t.ok(first.persons.notRegistered > 0, 'some not registered');
    t.equal(count((r) => r.status === 'DELETED'), first.persons.mix.deleted);
    t.ok(count((r) => r.canNotify) > 250, 'most can be alerted');
    const i = ids.findIndex((_, k) => categoryOf(k) === 'outdated');
    t.equal(byId.get(ids[i]!)!.canNotify, false, 'an outdated person cannot be alerted');
    const examples = JSON.parse(readFileSync(first.examplesFile, 'utf8'));
    t.ok(examples.mailbox.length > 0 && examples.notRegistered.length > 0);
    const stored = (await kysely.selectFrom('persons').select('person_id').execute()).map((p) => p.person_id);
    t.ok(stored.length > 300 && stored.every((id) => decodePersonId(id)?.synthetic === true), 'every seeded person has a synthetic id (month + 80), which no real person has');
    t.notOk(stored.some((id) => isValidPersonId(id, { synthetic: false })), 'so none of them is a valid id where synthetic ids are refused');
  });

  await t.test('idempotent: a second run adds nothing', async (t) => {
    const counts = async () => ({
      persons: Number((await kysely.selectFrom('persons').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
      mailboxes: Number((await kysely.selectFrom('mailboxes').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
      senders: Number((await kysely.selectFrom('senders').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
      changes: Number((await kysely.selectFrom('registry_changes').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
    });
    const before = await counts();
    const again = await seedRegistry(kysely, { sendersFile, persons: 400, dataDir });
    t.same(again.senders, { total: 3, added: 0 });
    t.equal(again.persons.added, 0);
    t.same(await counts(), before);
    const more = await seedRegistry(kysely, { sendersFile, persons: 450, dataDir });
    t.ok(more.persons.added > 0 && more.persons.added <= 50, 'a larger N adds only the new persons');
  });

  await t.test('the CLI command', async (t) => {
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      out.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      await seed(config, ['--persons', '20', '--senders', sendersFile]);
    } finally {
      process.stdout.write = write;
    }
    t.match(out.join(''), /providers \(development certificates/);
    t.notOk(/\d{11}/.test(out.join('')), 'no personId on stdout');
    await t.rejects(seed(config, ['--persons', 'many']), { message: /--persons must be an integer/ });
    const missing = await seed(config, ['--senders', path.join(dataDir, 'missing.txt')]).catch((err: unknown) => err);
    t.ok(missing instanceof UsageError, 'a missing senders file is a usage error');
    t.ok(existsSync(defaultSendersFile()), 'the senders list ships with the code');
    t.ok(readFileSync(defaultSendersFile(), 'utf8').split('\n').length > 300, 'the reference list of agencies');
  });
});
