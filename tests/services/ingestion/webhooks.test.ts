import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { service, startBackground } from '../../../services/ingestion/app.js';
import { checkWebhookUrl, isNonPublicAddress, postJson, retryDelayMs, safeLookup, WEBHOOK_SIGNATURE_HEADER } from '../../../services/ingestion/webhooks.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { letter, multipart, newKey, PDF, seedRegistry, SENDER, UNKNOWN_ORG } from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

t.test('address checks', async (t) => {
  for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip']) {
    t.ok(isNonPublicAddress(a), `${a} is not public`);
  }
  for (const a of ['93.184.215.14', '151.101.1.69', '2606:4700::1111', '::ffff:8.8.8.8']) t.notOk(isNonPublicAddress(a), `${a} is public`);
  t.equal(retryDelayMs(1, 1000), 1000);
  t.equal(retryDelayMs(3, 1000), 4000);
  t.equal(retryDelayMs(40, 1000), 3_600_000);

  const refused = async (url: string, allow = false) => {
    const err = await checkWebhookUrl(url, allow).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.match(err, { problemType: { slug: 'ingestion/webhook-url-refused' } }, `${url} refused`);
  };
  for (const url of ['https://127.0.0.1/hook', 'https://localhost/hook', 'https://10.0.0.5/x', 'https://[::1]/x', 'https://[::ffff:127.0.0.1]/x', 'https://169.254.169.254/latest/meta-data', 'http://93.184.215.14/hook', 'https://user:pw@93.184.215.14/', 'https://93.184.215.14/#frag', 'not a url', 'ftp://93.184.215.14/', 'https://no-such-host.invalid/']) {
    await refused(url);
  }
  t.ok(await checkWebhookUrl('https://93.184.215.14/hook', false), 'a public https address is accepted');
  t.ok(await checkWebhookUrl('http://127.0.0.1:8080/hook', true), 'allowed for development');

  // The connection-time lookup refuses a name that resolves inward (DNS rebinding).
  const looked = await new Promise<unknown>((resolve) => safeLookup(false)('localhost', {}, (err) => resolve(err)));
  t.match(looked, { name: 'WebhookRefused' });
  const all = await new Promise<unknown>((resolve) => safeLookup(true)('localhost', { all: true }, (_err, a) => resolve(a)));
  t.ok(Array.isArray(all) && all.length > 0, 'allowed: every address');
  const one = await new Promise<unknown>((resolve) => safeLookup(true)('localhost', {}, (_err, a) => resolve(a)));
  t.type(one, 'string');
  const missing = await new Promise<unknown>((resolve) => safeLookup(true)('no-such-host.invalid', {}, (err) => resolve(err)));
  t.ok(missing instanceof Error);
  t.match(await postJson('http://localhost:1/x', Buffer.from('{}'), {}, { allowPrivate: false, timeoutMs: 1000 }), { ok: false, error: /refused/ }, 'http refused without the flag');
  t.match(await postJson('https://127.0.0.1:1/x', Buffer.from('{}'), {}, { allowPrivate: false, timeoutMs: 1000 }), { ok: false, error: /refused/ });
  t.match(await postJson('https://localhost:1/x', Buffer.from('{}'), {}, { allowPrivate: false, timeoutMs: 1000 }), { ok: false, error: /refused/ }, 'refused at connect time');
  t.match(await postJson('::::', Buffer.from('{}'), {}, { allowPrivate: true, timeoutMs: 1000 }), { ok: false, error: 'invalid URL' });
});

t.test('webhooks push signed receipts with retries; the expiry sweep runs in the background', async (t) => {
  const svc = await testService(t, service, {
    env: { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_POLL_MS: '50', WEBHOOK_MAX_ATTEMPTS: '3', DELIVERY_EXPIRY_SECONDS: '1', EXPIRY_SWEEP_INTERVAL_MS: '50' },
  });
  const db = svc.deps.db.kysely;
  const storage = storageContext(svc.deps);
  await seedRegistry(db);
  const admin = await svc.token({ org: UNKNOWN_ORG, scope: SCOPES.admin });
  const sender = await svc.token({ org: SENDER, scope: SCOPES.send });

  const received: { body: Buffer; signature: string }[] = [];
  let failFirst = 2;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      if (failFirst-- > 0) {
        res.statusCode = 503;
        return res.end();
      }
      received.push({ body: Buffer.concat(parts), signature: String(req.headers[WEBHOOK_SIGNATURE_HEADER]) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

  const put = (orgnr: string, body: unknown, tok = admin) =>
    svc.app.inject({ method: 'PUT', url: `/v1/admin/senders/${orgnr}/webhook`, headers: { authorization: `Bearer ${tok}` }, payload: body as object });
  t.equal((await put(SENDER, { url }, sender)).statusCode, 403, 'senders cannot set webhooks');
  t.equal((await put(UNKNOWN_ORG, { url })).statusCode, 404, 'unknown sender');
  t.equal((await put(SENDER, { url: 'ftp://x' })).statusCode, 422);
  const set = await put(SENDER, { url });
  t.equal(set.statusCode, 200, set.body);
  t.match(set.json(), { orgnr: SENDER, url });
  const got = await svc.app.inject({ method: 'GET', url: `/v1/admin/senders/${SENDER}/webhook`, headers: { authorization: `Bearer ${admin}` } });
  t.match(got.json(), { url });

  // No outbox relay: nothing of the expiry goes through the queue any more.
  const background = await startBackground(svc.deps);
  t.teardown(() => background.stop());

  const b = multipart(letter(), [{ name: 'vedtak.pdf', content: PDF(1000) }]);
  const res = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { authorization: `Bearer ${sender}`, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
  t.equal(res.statusCode, 201);
  const id = res.json().id as string;

  // Not acknowledged within DELIVERY_EXPIRY_SECONDS=1: the background expiry sweep takes it,
  // and the ERROR receipt is pushed (after two failed attempts).
  await waitFor('the ERROR receipt pushed', async () => received.length > 0, 60_000);
  t.equal(received.length, 1, 'pushed once it succeeded');
  const push = received[0]!;
  const payload = JSON.parse(push.body.toString()) as { id: string; type: string; messageId: string; jws: string; attempt: number };
  t.match(payload, { type: 'ERROR', messageId: id, attempt: 3 });
  const [h, , s] = push.signature.split('.');
  const jwks = createLocalJWKSet((await storage.hub.jwks()) as JSONWebKeySet);
  const verified = await compactVerify(`${h}.${push.body.toString('base64url')}.${s}`, jwks);
  t.equal(verified.protectedHeader.typ, 'postbud-webhook+jws', 'the body signature verifies against the JWKS');
  await t.rejects(compactVerify(`${h}.${Buffer.from(push.body.toString().replace('ERROR', 'OPENED')).toString('base64url')}.${s}`, jwks), 'a changed body does not verify');
  await compactVerify(payload.jws, jwks);
  const status = await svc.app.inject({ method: 'GET', url: `/v1/messages/${id}`, headers: { authorization: `Bearer ${sender}` } });
  t.equal(status.json().status, 'EXPIRED');
  // The sender's endpoint answers before the pusher records the acknowledgement: wait for it.
  const pulled = async () => {
    const pull = await svc.app.inject({ method: 'GET', url: '/v1/receipts', headers: { authorization: `Bearer ${sender}` } });
    return pull.json().receipts.some((r: { id: string }) => r.id === payload.id) as boolean;
  };
  await waitFor('the push recorded as the acknowledgement', async () => !(await pulled()), 60_000);
  t.notOk(await pulled(), 'a pushed receipt counts as acknowledged');

  // A receipt the pusher cannot deliver stays for pull after the last attempt.
  failFirst = 1000;
  await appendEvent(db, storage.hub, { messageId: id, senderOrgnr: SENDER, type: 'NOTIFICATION_FAILED', data: { channel: 'sms' } });
  const gaveUp = await waitFor(
    'the pusher giving up',
    () => db.selectFrom('webhook_pushes').selectAll().where('sender_orgnr', '=', SENDER).where('gave_up_at', 'is not', null).executeTakeFirst(),
    60_000,
  );
  t.match(gaveUp, { attempts: 3, last_error: 'HTTP 503' }, 'gave up after WEBHOOK_MAX_ATTEMPTS');
  const left = await svc.app.inject({ method: 'GET', url: '/v1/receipts', headers: { authorization: `Bearer ${sender}` } });
  t.ok(left.json().receipts.some((r: { type: string }) => r.type === 'NOTIFICATION_FAILED'), 'still there to pull');

  const del = await svc.app.inject({ method: 'DELETE', url: `/v1/admin/senders/${SENDER}/webhook`, headers: { authorization: `Bearer ${admin}` } });
  t.equal(del.statusCode, 204);
  const del2 = await svc.app.inject({ method: 'DELETE', url: `/v1/admin/senders/${SENDER}/webhook`, headers: { authorization: `Bearer ${admin}` } });
  t.equal(del2.statusCode, 404);
  const gone = await svc.app.inject({ method: 'GET', url: `/v1/admin/senders/${SENDER}/webhook`, headers: { authorization: `Bearer ${admin}` } });
  t.equal(gone.statusCode, 404);
});
