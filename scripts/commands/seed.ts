import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql, type Kysely } from 'kysely';
import type { Config } from '../../shared/config/config.js';
import { connectDb } from '../../shared/db/connect.js';
import type { Database } from '../../shared/db/database.js';
import { migrateToLatest } from '../../shared/db/migrate.js';
import { orgnrForName } from '../../shared/ids/orgnr.js';
import { syntheticPersonIdList } from '../../shared/ids/person-id.js';
import { checkEncryptionCertificate } from '../../shared/registry/certificate.js';
import { createDevCertificate } from '../../shared/registry/dev-certificate.js';
import { startEmbeddedPostgres } from '../../shared/runtime/embedded-postgres.js';
import { projectRoot } from '../../shared/runtime/project-root.js';
import { recordProviderChanges } from '../../services/registry/changes.js';
import { importPersons, type ImportRecord } from '../../services/registry/import.js';
import { UsageError } from './token.js';

export const DIGIPOST = { orgnr: '984661185', name: 'Digipost', kind: 'digital' as const };
export const EBOKS = { orgnr: '922020175', name: 'e-Boks', kind: 'digital' as const };
export const PRINT_PROVIDER = { orgnr: orgnrForName('postbud print (development)'), name: 'Print (development)', kind: 'print' as const };
const PROVIDERS = [DIGIPOST, EBOKS, PRINT_PROVIDER];

/** The list of agencies ships with the code, so a fresh clone seeds on its own. */
export const defaultSendersFile = (): string => path.join(projectRoot(), 'scripts', 'seed-data', 'senders.txt');

export interface SeedOptions {
  sendersFile: string;
  persons: number;
  dataDir: string;
  now?: Date;
  log?: (line: string) => void;
}

export interface SeedSummary {
  senders: { total: number; added: number };
  providers: { orgnr: string; name: string; kind: string; certificate: string; key: string }[];
  persons: { requested: number; registered: number; added: number; notRegistered: number; mix: Record<Category, number> };
  examplesFile: string;
}

type Category = 'mailbox' | 'noMailbox' | 'reserved' | 'outdated' | 'deleted' | 'notRegistered';

/**
 * The mix of synthetic persons, in percent: most have a mailbox and fresh contact info, some have
 * no mailbox (print), some are reserved, some have contact info older than 18 months, a few are
 * deleted, and some valid ids are deliberately left out of the registry (NOT_REGISTERED).
 */
export const MIX: [Category, number][] = [
  ['mailbox', 65],
  ['noMailbox', 12],
  ['reserved', 8],
  ['outdated', 10],
  ['deleted', 1],
  ['notRegistered', 4],
];

const FIRST = ['ola', 'kari', 'per', 'anne', 'lars', 'ingrid', 'nils', 'sigrid', 'jon', 'marit', 'aksel', 'nora', 'emil', 'sara', 'ali', 'fatima'];
const LAST = ['nordmann', 'hansen', 'johansen', 'olsen', 'larsen', 'andersen', 'pedersen', 'nilsen', 'berg', 'haugen', 'bakken', 'dahl'];

/** A small deterministic hash of i, so person i always lands in the same category. */
const mixHash = (i: number, salt: number): number => {
  let x = (i + 1) * 2654435761 + salt * 40503;
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  return ((x ^ (x >>> 16)) >>> 0) % 100;
};

export function categoryOf(i: number): Category {
  let h = mixHash(i, 1);
  for (const [cat, pct] of MIX) {
    if (h < pct) return cat;
    h -= pct;
  }
  return 'mailbox';
}

const monthsBack = (now: Date, months: number): string => new Date(now.getTime() - months * 30.44 * 86_400_000).toISOString();

/** Person i's record for the import, or undefined when it is to stay NOT_REGISTERED. */
export function syntheticPerson(i: number, personId: string, now: Date): ImportRecord | undefined {
  const cat = categoryOf(i);
  if (cat === 'notRegistered') return undefined;
  const first = FIRST[i % FIRST.length]!;
  const last = LAST[Math.floor(i / FIRST.length) % LAST.length]!;
  const lang = mixHash(i, 2);
  const rec: ImportRecord = { personId, language: lang < 85 ? 'nb' : lang < 95 ? 'nn' : lang < 99 ? 'en' : 'se' };
  const fresh = (mixHash(i, 3) % 17) + 0.5;
  if (mixHash(i, 4) < 95) {
    rec.email = `${first}.${last}.${i}@example.com`;
    rec.emailUpdatedAt = monthsBack(now, cat === 'outdated' ? 20 + (i % 24) : fresh);
    if (cat !== 'outdated' && mixHash(i, 5) < 50) rec.emailVerifiedAt = monthsBack(now, fresh / 3);
  }
  if (mixHash(i, 6) < 90 || rec.email === undefined) {
    rec.mobile = `+47${mixHash(i, 7) < 70 ? 9 : 4}${String(1_000_000 + ((i * 7919) % 9_000_000)).padStart(7, '0')}`;
    rec.mobileUpdatedAt = monthsBack(now, cat === 'outdated' ? 19 + (i % 30) : fresh);
  }
  if (cat === 'reserved') {
    rec.reserved = true;
    rec.reservedAt = monthsBack(now, (i % 60) + 1);
  }
  if (cat === 'deleted') rec.status = 'DELETED';
  if (cat === 'mailbox' || cat === 'outdated') {
    const provider = mixHash(i, 8) < 60 ? DIGIPOST : EBOKS;
    rec.mailbox = { providerOrgnr: provider.orgnr, address: `${first}.${last}#${i.toString(36).toUpperCase().padStart(4, '0')}` };
  }
  return rec;
}

/** The provider's development key and certificate under DATA_DIR/providers/<orgnr>/, made once. */
export function providerCredentials(dataDir: string, p: { orgnr: string; name: string }): { der: Buffer; certFile: string; keyFile: string } {
  const dir = path.resolve(dataDir, 'providers', p.orgnr);
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) {
    const der = Buffer.from(readFileSync(certFile, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
    try {
      checkEncryptionCertificate(der);
      return { der, certFile, keyFile };
    } catch {
      // expired or otherwise unusable: make a new pair below
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cert = createDevCertificate({ commonName: `${p.name} (development)`, orgnr: p.orgnr });
  writeFileSync(keyFile, cert.keyPem, { mode: 0o600 });
  writeFileSync(certFile, cert.certPem);
  return { der: cert.der, certFile, keyFile };
}

/**
 * The orgnrs seedRegistry gives the agencies of a senders file, in file order (each derived from
 * its name, skipping the providers' numbers and numbers already given).
 */
export function seededSenders(file: string = defaultSendersFile()): { orgnr: string; name: string }[] {
  const taken = new Set(PROVIDERS.map((p) => p.orgnr));
  return readSenders(file).map((name) => {
    const orgnr = orgnrForName(name, taken);
    taken.add(orgnr);
    return { orgnr, name };
  });
}

export function readSenders(file: string): string[] {
  if (!existsSync(file)) throw new UsageError(`senders file not found: ${file} (give one with --senders <file>)`);
  return [...new Set(readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith('#')))];
}

/**
 * Loads the reference data and synthetic persons. Idempotent: senders and providers are
 * upserted by orgnr, persons already in the registry are left alone, so a second run adds nothing.
 */
export async function seedRegistry(db: Kysely<Database>, opts: SeedOptions): Promise<SeedSummary> {
  const now = opts.now ?? new Date();
  const log = opts.log ?? (() => undefined);

  const providers: SeedSummary['providers'] = [];
  for (const p of PROVIDERS) {
    const cred = providerCredentials(opts.dataDir, p);
    await db.transaction().execute(async (trx) => {
      const before = await trx.selectFrom('providers').select('certificate').where('orgnr', '=', p.orgnr).executeTakeFirst();
      await trx
        .insertInto('providers')
        .values({ orgnr: p.orgnr, name: p.name, kind: p.kind, certificate: cred.der, created_at: now, updated_at: now })
        .onConflict((oc) => oc.column('orgnr').doUpdateSet({ certificate: cred.der, updated_at: now }).where('providers.certificate', 'is distinct from', cred.der))
        .execute();
      if (before?.certificate && !before.certificate.equals(cred.der)) await recordProviderChanges(trx, p.orgnr, 'certificate', true);
    });
    providers.push({ orgnr: p.orgnr, name: p.name, kind: p.kind, certificate: cred.certFile, key: cred.keyFile });
  }

  const senders = seededSenders(opts.sendersFile).map((sender) => ({ ...sender, created_at: now, updated_at: now }));
  let sendersAdded = 0;
  for (let i = 0; i < senders.length; i += 1000) {
    const added = await db.insertInto('senders').values(senders.slice(i, i + 1000)).onConflict((oc) => oc.column('orgnr').doNothing()).returning('orgnr').execute();
    sendersAdded += added.length;
  }
  log(`senders: ${senders.length} (${sendersAdded} new)`);

  const ids = syntheticPersonIdList(opts.persons);
  const mix = Object.fromEntries(MIX.map(([c]) => [c, 0])) as Record<Category, number>;
  const examples = Object.fromEntries(MIX.map(([c]) => [c, [] as string[]])) as Record<Category, string[]>;
  let added = 0;
  let registered = 0;
  const CHUNK = 5000;
  for (let start = 0; start < ids.length; start += CHUNK) {
    const chunk = ids.slice(start, start + CHUNK);
    const existing = new Set(
      (await sql<{ person_id: string }>`select person_id from persons where person_id = any(${sql.val(chunk)}::text[])`.execute(db)).rows.map((r) => r.person_id),
    );
    const records: ImportRecord[] = [];
    chunk.forEach((id, k) => {
      const i = start + k;
      const cat = categoryOf(i);
      mix[cat]++;
      if (examples[cat].length < 5) examples[cat].push(id);
      const rec = syntheticPerson(i, id, now);
      if (!rec) return;
      registered++;
      if (!existing.has(id)) records.push(rec);
    });
    if (records.length > 0) {
      const summary = await importPersons(db, records, now, 'seed');
      added += summary.created;
    }
    if (ids.length > CHUNK) log(`persons: ${Math.min(start + CHUNK, ids.length)}/${ids.length}`);
  }
  log(`persons: ${ids.length} generated, ${registered} registered (${added} new), ${mix.notRegistered} left NOT_REGISTERED`);

  mkdirSync(opts.dataDir, { recursive: true });
  const examplesFile = path.resolve(opts.dataDir, 'seed-persons.json');
  const sendersExample = senders.slice(0, 3).map(({ orgnr, name }) => ({ orgnr, name }));
  writeFileSync(
    examplesFile,
    `${JSON.stringify({ note: 'Synthetic personIds from postbud seed (Tenor ids, month + 80), a few per category, and a few seeded senders', senders: sendersExample, ...examples }, null, 2)}\n`,
  );
  return {
    senders: { total: senders.length, added: sendersAdded },
    providers,
    persons: { requested: ids.length, registered, added, notRegistered: mix.notRegistered, mix },
    examplesFile,
  };
}

const USAGE = `usage: postbud seed [--persons <n>] [--senders <file>]
  --persons   synthetic persons to generate (default 1000)
  --senders   agency names, one per line (default scripts/seed-data/senders.txt, a copy of the reference list)`;

/**
 * `postbud seed`: against DATABASE_URL, or the embedded Postgres `npm start` uses (started
 * here if it is not running). Migrates first.
 */
export async function seed(config: Config, argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { persons: { type: 'string' }, senders: { type: 'string' } } });
  const persons = values.persons === undefined ? 1000 : Number(values.persons);
  if (!Number.isInteger(persons) || persons < 0 || persons > 5_000_000) throw new UsageError(`--persons must be an integer 0..5000000\n${USAGE}`);
  const sendersFile = path.resolve(values.senders ?? defaultSendersFile());
  readSenders(sendersFile);

  let url = config.DATABASE_URL;
  let stop: (() => Promise<void>) | undefined;
  if (!url) {
    url = `postgres://postgres:postgres@127.0.0.1:${config.EMBEDDED_PG_PORT}/postgres`;
    const probe = connectDb(url, { poolSize: 1 });
    const running = await sql`select 1`.execute(probe.kysely).then(
      () => true,
      () => false,
    );
    await probe.close();
    if (!running) {
      const pg = await startEmbeddedPostgres({ dataDir: path.join(config.DATA_DIR, 'pg'), port: config.EMBEDDED_PG_PORT });
      stop = () => pg.stop();
    }
  }
  const db = connectDb(url, { poolSize: 2, applicationName: 'postbud-seed' });
  try {
    await migrateToLatest(db.kysely);
    const summary = await seedRegistry(db.kysely, { sendersFile, persons, dataDir: config.DATA_DIR, log: (l) => process.stdout.write(`${l}\n`) });
    const lines = [
      '',
      'providers (development certificates; keys stay here for decrypting demo deliveries):',
      ...summary.providers.map((p) => `  ${p.orgnr}  ${p.name.padEnd(20)} ${p.kind.padEnd(8)} ${p.certificate}`),
      `example personIds per category: ${summary.examplesFile}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    await db.close();
    await stop?.();
  }
}
