import t, { type Test } from 'tap';
import { service } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, insertProvider, PRINTER, providerCert, seedDelivery, type SeedDelivery } from './fixtures.js';

const digipost = providerCert('Digipost');
const printer = providerCert('Printer');
const PROBLEM = 'https://postbud.dev/problems/';
const HOUR = 3_600_000;

async function setup(t: Test) {
  const ts = await testService(t, service);
  await insertProvider(ts.deps.db.kysely, { orgnr: DIGIPOST, certDer: digipost.certDer });
  await insertProvider(ts.deps.db.kysely, { orgnr: PRINTER, kind: 'print', certDer: printer.certDer });
  const headers = async (org: string) => ({ authorization: `Bearer ${await ts.token({ org, scope: SCOPES.provider })}` });
  /** A delivery its provider has listed and acknowledged, so the next event is the one under test. */
  const acknowledged = async (opts: SeedDelivery = {}) => {
    const org = opts.route === 'PRINT' ? PRINTER : DIGIPOST;
    const d = await seedDelivery(ts.deps, opts);
    const h = await headers(org);
    const ack = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers: h });
    t.equal(ack.statusCode, 200, ack.body);
    const report = (payload: object) => ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/events`, headers: h, payload });
    const events = async () =>
      (await ts.deps.db.kysely.selectFrom('message_events').select('type').where('message_id', '=', d.messageId).orderBy('seq').execute()).map((e) => e.type);
    return { ...d, report, events };
  };
  return { ...ts, acknowledged };
}

t.test('OPENED is checked against the letter: security level and availableAt', async (t) => {
  const ts = await setup(t);

  const level4 = await ts.acknowledged({ securityLevel: 4 });
  const low = await level4.report({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 3 });
  t.equal(low.statusCode, 422);
  t.match(low.headers['content-type'], /^application\/problem\+json/);
  t.match(low.json(), { type: `${PROBLEM}storage/security-level-too-low`, required: 4, reported: 3 });
  t.same(await level4.events(), ['SEALED', 'DELIVERED'], 'no OPENED event, so no receipt');
  t.equal((await level4.report({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 })).json().state, 'OPENED', 'level 4 opens it');

  const level3 = await ts.acknowledged({ securityLevel: 3 });
  t.equal((await level3.report({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 })).statusCode, 200, 'a stronger login than required is fine');

  // Offered (and acknowledged) before availableAt, as providers are; opened before it is impossible.
  const availableAt = new Date(Date.now() + 2 * HOUR);
  const later = await ts.acknowledged({ availableAt });
  const early = await later.report({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 });
  t.equal(early.statusCode, 422);
  t.match(early.json(), { type: `${PROBLEM}storage/opened-before-available`, availableAt: availableAt.toISOString() });
  t.same(await later.events(), ['SEALED', 'DELIVERED']);
});

t.test('every dated event: not in the future, not before the hub offered the delivery', async (t) => {
  const ts = await setup(t);
  const future = new Date(Date.now() + HOUR).toISOString();
  const past = new Date(Date.now() - 24 * HOUR).toISOString();

  const digital = await ts.acknowledged();
  t.match((await digital.report({ type: 'OPENED', at: future, securityLevel: 4 })).json(), { status: 422, type: `${PROBLEM}storage/event-in-future` });
  t.match((await digital.report({ type: 'OPENED', at: past, securityLevel: 4 })).json(), { status: 422, type: `${PROBLEM}storage/event-before-delivery` });

  const print = await ts.acknowledged({ route: 'PRINT' });
  for (const type of ['PRINTED', 'RETURNED']) {
    t.match((await print.report({ type, at: future })).json(), { status: 422, type: `${PROBLEM}storage/event-in-future` }, `${type} in the future`);
    t.match((await print.report({ type, at: past })).json(), { status: 422, type: `${PROBLEM}storage/event-before-delivery` }, `${type} before the delivery`);
  }
  t.same(await print.events(), ['SEALED', 'PRINT_ACCEPTED'], 'nothing was recorded');
  // A provider clock a minute ahead is drift, not a false report.
  const drift = new Date(Date.now() + 60_000).toISOString();
  t.equal((await print.report({ type: 'PRINTED', at: drift })).json().state, 'PRINTED');
});
