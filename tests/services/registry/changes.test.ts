/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON read field by field */
import t from 'tap';
import { sql } from 'kysely';
import { waitFor } from '../../helpers/wait.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { recordChanges } from '../../../services/registry/changes.js';
import { AGENCY, DIGIPOST, importLines, personIds, registry } from './fixtures.js';

t.test('change feed', async (t) => {
  const r = await registry(t);
  const db = r.deps.db.kysely;
  const feed = async (after: string, limit = 1000) => (await r.inject('GET', `/v1/changes?after=${after}&limit=${limit}`, r.lookupAll)).json;

  await t.test('every kind of change enters the feed in order', async (t) => {
    const [a, b] = personIds(2);
    const tok = await r.citizen(a);
    await r.inject('PUT', '/v1/me/email', tok, { address: 'a@example.no' });
    await r.inject('POST', '/v1/me/email/confirm', tok);
    await r.inject('PUT', '/v1/me/reservation', tok, { reserved: true });
    await r.inject('PUT', '/v1/me/language', tok, { language: 'nn' });
    const m = await r.inject('POST', '/v1/provider/mailboxes', await r.provider(DIGIPOST), { personId: b, address: 'b#1' });
    await r.inject('POST', `/v1/provider/mailboxes/${m.json.id}/close`, await r.provider(DIGIPOST));
    await importLines(r, [{ personId: b, language: 'en' }]);
    const res = await feed('0');
    t.same(
      res.changes.map((c: any) => [c.seq, c.personId === a ? 'a' : 'b', c.kind]),
      [
        ['1', 'a', 'created'],
        ['2', 'a', 'contact'],
        ['3', 'a', 'contact'],
        ['4', 'a', 'reservation'],
        ['5', 'a', 'language'],
        ['6', 'b', 'created'],
        ['7', 'b', 'mailbox'],
        ['8', 'b', 'mailbox'],
        ['9', 'b', 'import'],
      ],
    );
    t.equal(res.next, '9');
    t.match(res.changes[0].changedAt, /Z$/);
    const page = await feed('3', 2);
    t.same(page.changes.map((c: any) => c.seq), ['4', '5']);
    t.equal(page.next, '5');
    const end = await feed('9');
    t.same(end.changes, []);
    t.equal(end.next, '9', 'an empty page keeps the position');
  });

  await t.test('gap-free under concurrency: a later number is never visible before an earlier one', async (t) => {
    const [x, y, z] = personIds(3);
    const start = (await feed('0')).next as string;
    let releaseFirst!: () => void;
    const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
    let firstRecorded!: () => void;
    const recorded = new Promise<void>((resolve) => (firstRecorded = resolve));
    // T1 takes a number and holds its transaction open.
    const t1 = db.transaction().execute(async (trx) => {
      await recordChanges(trx, [{ personId: x, kind: 'contact' }]);
      firstRecorded();
      await firstHolds;
    });
    await recorded;
    // T2 wants a number meanwhile; it must wait for T1 rather than take the next one and commit first.
    let t2Done = false;
    const t2 = db
      .transaction()
      .execute((trx) => recordChanges(trx, [{ personId: y, kind: 'contact' }]))
      .then(() => (t2Done = true));
    // Control point: Postgres itself says T2 is blocked on a lock (no sleep that a slow machine outlasts).
    await waitFor('T2 blocked on T1\'s lock', async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`.execute(db);
      return rows[0]!.n >= 1 || t2Done;
    });
    t.equal(t2Done, false, 'T2 waits for T1');
    t.same((await feed(start)).changes, [], 'readers see neither yet');
    releaseFirst();
    await Promise.all([t1, t2]);
    // A rolled-back transaction gives its number back.
    await db
      .transaction()
      .execute(async (trx) => {
        await recordChanges(trx, [{ personId: z, kind: 'contact' }]);
        throw new Error('rollback');
      })
      .catch(() => undefined);
    await db.transaction().execute((trx) => recordChanges(trx, [{ personId: z, kind: 'language' }]));
    const after = (await feed(start)).changes;
    const base = BigInt(start);
    t.same(
      after.map((c: any) => [BigInt(c.seq) - base, c.personId === x ? 'x' : c.personId === y ? 'y' : 'z', c.kind]),
      [
        [1n, 'x', 'contact'],
        [2n, 'y', 'contact'],
        [3n, 'z', 'language'],
      ],
    );
  });

  await t.test('many concurrent writers leave a contiguous sequence', async (t) => {
    const start = BigInt((await feed('0')).next);
    const ids = personIds(40);
    await Promise.all(ids.map(async (id) => r.inject('PUT', '/v1/me/language', await r.citizen(id), { language: 'nb' })));
    const seen: bigint[] = [];
    let after = String(start);
    for (;;) {
      const page = await feed(after, 7);
      if (page.changes.length === 0) break;
      seen.push(...page.changes.map((c: any) => BigInt(c.seq)));
      after = page.next;
    }
    t.equal(seen.length, 80, 'created + language for each');
    t.ok(seen.every((s, i) => s === start + BigInt(i + 1)), 'no gaps, no repeats');
  });

  await t.test('access and bad queries', async (t) => {
    t.equal((await r.inject('GET', '/v1/changes', undefined)).statusCode, 401);
    t.equal((await r.inject('GET', '/v1/changes', await r.token({ org: AGENCY, scope: SCOPES.send }))).statusCode, 403);
    t.equal((await r.inject('GET', '/v1/changes', await r.citizen(personIds(1)[0]!))).statusCode, 403);
    t.equal((await r.inject('GET', '/v1/changes?limit=1001', r.lookupAll)).statusCode, 400);
    t.equal((await r.inject('GET', '/v1/changes?after=-1', r.lookupAll)).statusCode, 400);
    t.equal((await r.inject('GET', '/v1/changes?after=1&extra=2', r.lookupAll)).statusCode, 400);
    const res = await r.inject('GET', '/v1/changes', r.lookupAll);
    t.equal(res.statusCode, 200);
    t.ok(res.json.changes.length <= 100, 'default page size 100');
  });
});
