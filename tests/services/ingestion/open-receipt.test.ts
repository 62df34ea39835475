import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { service as ingestion } from '../../../services/ingestion/app.js';
import { pushRound } from '../../../services/ingestion/webhooks.js';
import { service as storage } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, letter, multipart, newKey, PDF, seedRegistry, SENDER, UNKNOWN_ORG } from './fixtures.js';

t.test('OPENED reaches the sender only when the letter asked for an open receipt', async (t) => {
  // Two services on one database, sharing the KEK as deployed services do.
  const KEKS = `test:${randomBytes(32).toString('base64')}`;
  const svc = await testService(t, ingestion, { env: { WEBHOOK_ALLOW_PRIVATE: 'true', KEKS } });
  const store = await testService(t, storage, { databaseUrl: svc.config.DATABASE_URL!, env: { KEKS } });
  const db = svc.deps.db.kysely;
  await seedRegistry(db);
  const sender = { authorization: `Bearer ${await svc.token({ org: SENDER, scope: SCOPES.send })}` };
  const provider = { authorization: `Bearer ${await store.token({ org: DIGIPOST, scope: SCOPES.provider })}` };

  const pushed: string[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString()) as { type: string; messageId: string };
      pushed.push(`${body.messageId}:${body.type}`);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const admin = { authorization: `Bearer ${await svc.token({ org: UNKNOWN_ORG, scope: SCOPES.admin })}` };
  const hook = await svc.app.inject({ method: 'PUT', url: `/v1/admin/senders/${SENDER}/webhook`, headers: admin, payload: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` } });
  t.equal(hook.statusCode, 200, hook.body);

  const send = async (openReceipt: boolean) => {
    const b = multipart(letter({ openReceipt }), [{ name: 'vedtak.pdf', content: PDF(1000) }]);
    const res = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...sender, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
    t.equal(res.statusCode, 201, res.body);
    return res.json().id as string;
  };
  const silent = await send(false);
  const asked = await send(true);

  // The provider delivers both and reports both opened, as it would.
  const listing = await store.app.inject({ method: 'GET', url: '/v1/deliveries', headers: provider });
  t.equal(listing.statusCode, 200, listing.body);
  const listed = listing.json().deliveries as { id: string; messageId: string }[];
  t.equal(listed.length, 2);
  for (const d of listed) {
    t.equal((await store.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers: provider })).statusCode, 200);
    const opened = await store.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/events`, headers: provider, payload: { type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 } });
    t.equal(opened.json().state, 'OPENED', 'the provider is told it was recorded');
  }

  const receipts = (await svc.app.inject({ method: 'GET', url: '/v1/receipts', headers: sender })).json().receipts as { type: string; messageId: string }[];
  const typesOf = (id: string) => receipts.filter((r) => r.messageId === id).map((r) => r.type);
  t.same(typesOf(silent), ['DELIVERED'], 'no OPENED receipt without openReceipt');
  t.same(typesOf(asked), ['DELIVERED', 'OPENED']);

  const status = async (id: string) => (await svc.app.inject({ method: 'GET', url: `/v1/messages/${id}`, headers: sender })).json();
  const s = await status(silent);
  t.match(s, { status: 'DELIVERED', eFormidlingStatus: 'LEVERT', openReceipt: false }, 'the sender sees DELIVERED, not OPENED');
  t.same(s.timeline.map((e: { type: string }) => e.type), ['SEALED', 'DELIVERED'], 'the timeline shown to the sender has no OPENED');
  t.match(await status(asked), { status: 'OPENED', eFormidlingStatus: 'LEST' });
  const listOpened = (await svc.app.inject({ method: 'GET', url: '/v1/messages?status=OPENED', headers: sender })).json().items as { id: string }[];
  t.same(listOpened.map((m) => m.id), [asked], 'the list filters on the status the sender sees');

  const chain = await db.selectFrom('message_events').select('type').where('message_id', '=', silent).orderBy('seq').execute();
  t.same(chain.map((e) => e.type), ['SEALED', 'DELIVERED', 'OPENED'], 'the evidence chain still records the opening');

  await pushRound(db, storageContext(svc.deps).hub, { allowPrivate: true, maxAttempts: 3, retryBaseMs: 50, timeoutMs: 5000 });
  t.same(pushed.filter((p) => p.startsWith(silent)), [`${silent}:DELIVERED`], 'no OPENED webhook push');
  t.same(pushed.filter((p) => p.startsWith(asked)).sort(), [`${asked}:DELIVERED`, `${asked}:OPENED`]);
});
