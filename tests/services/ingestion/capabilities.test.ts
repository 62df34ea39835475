import { execFileSync } from 'node:child_process';
import { sql } from 'kysely';
import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { projectRoot } from '../../../shared/runtime/project-root.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, PERSONS, seedRegistry, SENDER } from './fixtures.js';

const [outdated, noContact, outdatedNoMailbox] = syntheticPersonIdList(3, 5000);

t.test('capabilities: reason codes, scopes, and every answer audited', async (t) => {
  const svc = await testService(t, service);
  const db = svc.deps.db.kysely;
  await seedRegistry(db);
  const old = new Date(Date.now() - 3 * 365 * 86_400_000);
  await sql`insert into persons (person_id, status, reserved, email, email_updated_at) values
    (${outdated}, 'ACTIVE', false, 'gammel@example.no', ${old}), (${noContact}, 'ACTIVE', false, null, null), (${outdatedNoMailbox}, 'ACTIVE', false, 'gammel2@example.no', ${old})`.execute(db);
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values (${outdated}, ${DIGIPOST}, 'gammel#1', true), (${noContact}, ${DIGIPOST}, 'ny#1', true)`.execute(db);
  const sendOnly = await svc.token({ org: SENDER, scope: SCOPES.send, clientId: 'agency-client-1' });
  const withMailbox = await svc.token({ org: SENDER, scope: `${SCOPES.send} ${SCOPES.lookupDigitalPost}` });
  const get = (personId: string, token = sendOnly, headers: Record<string, string> = {}) =>
    svc.app.inject({ method: 'GET', url: `/v1/capabilities/${personId}`, headers: { authorization: `Bearer ${token}`, ...headers } });
  const audit = () => db.selectFrom('lookup_audit').selectAll().orderBy('id').execute();

  await t.test('each situation has its reason code', async (t) => {
    const cases: [string, string, Record<string, unknown>][] = [
      ['digital with alerts', PERSONS.digital, { reason: null, canNotifyReason: null, digital: { possible: true, reason: null } }],
      ['reserved', PERSONS.reserved, { reason: 'RESERVED', canNotifyReason: 'RESERVED', digital: { possible: false, reason: 'RESERVED' }, print: { possible: true, reason: null } }],
      ['no mailbox', PERSONS.noMailbox, { reason: 'NO_MAILBOX', canNotifyReason: 'NO_CONTACT_INFO', digital: { possible: false, reason: 'NO_MAILBOX' } }],
      ['deleted', PERSONS.deleted, { status: 'DELETED', reason: 'DELETED', canNotifyReason: 'DELETED', digital: { reason: 'DELETED' }, print: { possible: false, reason: 'DELETED' } }],
      ['not registered', PERSONS.notRegistered, { status: 'NOT_REGISTERED', reason: 'NOT_REGISTERED', digital: { reason: 'NOT_REGISTERED' }, print: { possible: false, reason: 'NOT_REGISTERED' } }],
      ['contact info older than 18 months', outdated!, { reason: 'CONTACT_OUTDATED', canNotify: false, canNotifyReason: 'CONTACT_OUTDATED', digital: { possible: true, reason: null } }],
      ['a mailbox but no contact info', noContact!, { reason: 'NO_CONTACT_INFO', canNotifyReason: 'NO_CONTACT_INFO', digital: { possible: true } }],
      ['no mailbox comes before outdated contact info', outdatedNoMailbox!, { reason: 'NO_MAILBOX', canNotifyReason: 'CONTACT_OUTDATED' }],
    ];
    for (const [name, id, want] of cases) {
      const res = await get(id);
      t.equal(res.statusCode, 200, name);
      t.match(res.json(), want, name);
      t.notMatch(res.body, /@example\.no/, `${name}: no contact data`);
    }
  });

  await t.test('the mailbox (provider and address) only with postbud:lookup.digitalpost', async (t) => {
    const plain = (await get(PERSONS.digital)).json();
    t.same(plain.digital, { possible: true, reason: null, provider: null, mailboxAddress: null, securityLevels: [3, 4] }, 'postbud:send alone learns that digital mail is possible, not where');
    const scoped = (await get(PERSONS.digital, withMailbox)).json();
    t.same(scoped.digital, { possible: true, reason: null, provider: { orgnr: DIGIPOST, name: 'Digipost' }, mailboxAddress: 'ola.nordmann#1', securityLevels: [3, 4] });
  });

  await t.test('every answer writes one audit row: who, when, how many, which API; never which person', async (t) => {
    const before = (await audit()).length;
    t.ok(before >= 10, 'the answers above were audited');
    const started = new Date(Date.now() - 1000);
    const res = await get(PERSONS.digital, sendOnly, { 'x-purpose': `vedtak for ${PERSONS.digital} (kari@example.no)` });
    t.equal(res.statusCode, 200);
    const rows = await audit();
    t.equal(rows.length, before + 1, 'one row per answer');
    const row = rows.at(-1)!;
    t.match(row, { consumer_org: SENDER, client_id: 'agency-client-1', api: 'capabilities', person_count: 1, scopes: SCOPES.send });
    t.ok(row.looked_up_at >= started && row.looked_up_at <= new Date(Date.now() + 1000), 'when');
    t.match(row.purpose, /^vedtak for \[personId\] .*\[email\]/, 'the purpose is kept, scrubbed');
    t.notMatch(row.purpose, /kari|\d{11}/);
    t.notMatch(JSON.stringify(rows), new RegExp(Object.values(PERSONS).join('|')), 'no personId in any audit row');
    t.equal((await get('12345678901')).statusCode, 400, 'an invalid id is refused');
    t.equal((await audit()).length, before + 1, 'and is no answer about a person');
  });

  await t.test('the registry owns lookup_audit: append-only, written through its record_lookup()', async (t) => {
    await t.rejects(sql`update lookup_audit set person_count = 0`.execute(db), /append-only/);
    await t.rejects(sql`delete from lookup_audit`.execute(db), /append-only/);
    const root = projectRoot();
    let writers = '';
    try {
      writers = execFileSync('git', ['grep', '-l', '-i', '-E', "insertInto\\('lookup_audit'\\)|insert into lookup_audit", '--', 'services', 'shared', 'scripts'], { cwd: root, encoding: 'utf8' });
    } catch {
      writers = ''; // git grep exits 1 when nothing matches
    }
    t.equal(writers.trim(), '', 'no code writes lookup_audit except through record_lookup() (migration 0014)');
  });
});
