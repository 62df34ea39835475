import t from 'tap';
import { service as ingestion } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService } from '../../helpers/service.js';
import { letter, multipart, newKey, OTHER_SENDER, PDF, seedRegistry, SENDER } from '../ingestion/fixtures.js';

t.test('find a letter by senderReference, filter by status and time range, paged', async (t) => {
  const ing = await testService(t, ingestion);
  const db = ing.deps.db.kysely;
  await seedRegistry(db);
  const sender = { authorization: `Bearer ${await ing.token({ org: SENDER, scope: SCOPES.send })}` };
  const other = { authorization: `Bearer ${await ing.token({ org: OTHER_SENDER, scope: SCOPES.send })}` };
  const send = async (ref: string, headers = sender) => {
    const b = multipart(letter({ senderReference: ref }), [{ name: 'vedtak.pdf', content: PDF(500) }]);
    const res = await ing.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...headers, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
    t.equal(res.statusCode, 201, res.body);
    return (res.json() as { id: string }).id;
  };
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await send(`sak-2026/${i}`));
  const otherId = await send('sak-2026/0', other);
  // Spread creation times over five days (a clock in the data, not a sleep).
  for (const [i, id] of ids.entries()) await db.updateTable('messages').set({ created_at: new Date(Date.UTC(2026, 0, 10 + i, 12)) } as never).where('id', '=', id).execute();
  await ing.app.inject({ method: 'DELETE', url: `/v1/messages/${ids[3]}`, headers: sender });

  const get = async (qs: string, headers = sender) => ing.app.inject({ method: 'GET', url: `/v1/messages?${qs}`, headers });
  const found = async (qs: string, headers = sender) => {
    const res = await get(qs, headers);
    t.equal(res.statusCode, 200, res.body);
    return res.json() as { items: { id: string; senderReference: string; status: string }[]; nextCursor: string | null };
  };

  let page = await found(`senderReference=${encodeURIComponent('sak-2026/2')}`);
  t.same(page.items.map((i) => i.id), [ids[2]], 'the one letter with that reference');
  t.equal(page.items[0]!.senderReference, 'sak-2026/2');
  page = await found(`senderReference=${encodeURIComponent('sak-2026/0')}`, other);
  t.same(page.items.map((i) => i.id), [otherId], "each sender finds only its own letter");
  t.same((await found('senderReference=nope')).items, [], 'unknown reference: empty list, not an error');

  page = await found('createdFrom=2026-01-11T00:00:00Z&createdTo=2026-01-13T12:00:00Z');
  t.same(page.items.map((i) => i.id), [ids[1], ids[2]], 'half-open range: from inclusive, to exclusive');
  page = await found('status=CANCELLED');
  t.same(page.items.map((i) => i.id), [ids[3]]);
  page = await found('status=ACCEPTED&createdFrom=2026-01-12T00:00:00Z');
  t.same(page.items.map((i) => i.id), [ids[2], ids[4]], 'filters combine');

  // Paged as the list always was.
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    page = await found(`limit=2&createdFrom=2026-01-01T00:00:00Z${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...page.items.map((i) => i.id));
    cursor = page.nextCursor;
  } while (cursor);
  t.same(seen, ids, 'every letter once, oldest first');

  const inverted = await get('createdFrom=2026-02-01T00:00:00Z&createdTo=2026-01-01T00:00:00Z');
  t.equal(inverted.statusCode, 400);
  t.equal(inverted.json().type, 'https://postbud.dev/problems/ingestion/invalid-time-range');
  t.equal((await get('createdFrom=yesterday')).statusCode, 400, 'not a date-time');
  t.equal((await get(`senderReference=${'x'.repeat(101)}`)).statusCode, 400, 'longer than a reference can be');
  t.equal((await get('status=LOST')).statusCode, 400);
  t.equal((await get('senderReference=a', { authorization: `Bearer ${await ing.token({ org: SENDER, scope: SCOPES.lookup })}` })).statusCode, 403, 'needs the send scope');
});
