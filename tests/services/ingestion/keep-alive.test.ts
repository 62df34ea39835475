/**
 * Refusing early without breaking the connection (issue 16.7): a letter refused while its 5 MB
 * document is still on the wire is answered, and the next request on the same keep-alive
 * connection is answered too. A real HTTP client against a listening server: app.inject has no
 * connection to break.
 */
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { Admission } from '../../../services/ingestion/intake/admission.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { keepAliveClient, type KeepAliveAnswer } from '../../helpers/keep-alive.js';
import { testService } from '../../helpers/service.js';
import { letter, multipart, newKey, PDF, PERSONS, seedRegistry, SENDER } from './fixtures.js';

const FIVE_MB = 5 * 1024 * 1024;
const MAX = 8 * 1024 * 1024;

t.test('early refusals on a keep-alive connection', async (t) => {
  const svc = await testService(t, service, { env: { MESSAGE_MAX_BYTES: String(MAX) } });
  await seedRegistry(svc.deps.db.kysely);
  await svc.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(svc.app.server.address() as AddressInfo).port}`;
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  const client = keepAliveClient(base);
  t.teardown(() => client.close());

  const post = (message: unknown, files: { name: string; content: Buffer }[], auth: string | null = `Bearer ${token}`) => {
    const body = multipart(message, files);
    return client.request('POST', '/v1/messages', { 'content-type': body.contentType, 'idempotency-key': newKey(), ...(auth ? { authorization: auth } : {}) }, body.payload);
  };
  const slug = (a: KeepAliveAnswer) => (JSON.parse(a.body) as { type: string }).type.replace('https://postbud.dev/problems/', '');

  const cases: [string, () => Promise<KeepAliveAnswer>, number, string][] = [
    ['wrong magic bytes', () => post(letter(), [{ name: 'vedtak.pdf', content: Buffer.concat([Buffer.from('MZ not a pdf'), Buffer.alloc(FIVE_MB)]) }]), 422, 'ingestion/document-content-mismatch'],
    ['schema error', () => post(letter({ securityLevel: 2 }), [{ name: 'vedtak.pdf', content: PDF(FIVE_MB) }]), 400, 'ingestion/invalid-message'],
    ['reserved recipient', () => post(letter({ recipient: { personId: PERSONS.reserved } }), [{ name: 'vedtak.pdf', content: PDF(FIVE_MB) }]), 422, 'ingestion/recipient-reserved'],
    ['no token', () => post(letter(), [{ name: 'vedtak.pdf', content: PDF(FIVE_MB) }], null), 401, 'unauthenticated'],
    [
      'over the size limit, split over two documents',
      () =>
        post(letter({ documents: [{ name: 'a.pdf', mime: 'application/pdf', main: true }, { name: 'b.pdf', mime: 'application/pdf' }] }), [
          { name: 'a.pdf', content: PDF(FIVE_MB) },
          { name: 'b.pdf', content: PDF(FIVE_MB) },
        ]),
      413,
      'ingestion/letter-too-large',
    ],
  ];
  for (const [name, refused, status, type] of cases) {
    await t.test(name, async (t) => {
      const answer = await refused();
      t.equal(answer.status, status, answer.body.slice(0, 300));
      t.equal(answer.headers['content-type'], 'application/problem+json; charset=utf-8');
      t.equal(slug(answer), type);
      const after = await client.request('GET', '/health/live');
      t.equal(after.status, 200, 'the next request is answered');
      if (answer.headers.connection === 'close') t.not(after.socket, answer.socket, 'on a new connection, as the server asked');
      else t.equal(after.socket, answer.socket, 'on the same connection');
    });
  }

  await t.test('a small letter shed before its body was read: 503, and the connection stays usable', async (t) => {
    const intake = svc.app.intake!;
    const saved = intake.admission;
    t.teardown(() => (intake.admission = saved));
    // Control point: a bound of one with one letter in flight, so the next letter is shed.
    intake.admission = new Admission({ targetMs: 1000, intervalMs: 60_000, initialLimit: 1, minLimit: 1 });
    const ticket = intake.admission.enter()!;
    const shed = await post(letter(), [{ name: 'vedtak.pdf', content: PDF(10 * 1024) }]);
    t.equal(shed.status, 503);
    t.equal(slug(shed), 'ingestion/intake-overloaded');
    t.equal(shed.headers['retry-after'], '1');
    t.not(shed.headers.connection, 'close', 'no reconnect for the retry');
    intake.admission.leave(ticket);
    const retried = await post(letter(), [{ name: 'vedtak.pdf', content: PDF(10 * 1024) }]);
    t.equal(retried.status, 201, 'the retry on the same connection is taken');
    t.equal(retried.socket, shed.socket, 'on the same connection');
  });
});
