import t from 'tap';
import { sql } from 'kysely';
import { service } from '../../../services/storage/app.js';
import { purgeExpired } from '../../../services/storage/retention.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { sealPackage } from '../../../shared/storage/packages.js';
import { Readable } from 'node:stream';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, insertProvider, manifestInput, providerCert, seedDelivery } from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

const digipost = providerCert('Digipost');

t.test('acknowledged packages are purged after the grace period; evidence stays', async (t) => {
  const ts = await testService(t, service, { env: { PACKAGE_RETENTION_HOURS: '24' } });
  const db = ts.deps.db.kysely;
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider } as never)}` };
  const old = await seedDelivery(ts.deps);
  const recent = await seedDelivery(ts.deps);
  const pending = await seedDelivery(ts.deps);
  const fp = (await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers })).json().deliveries[0].fingerprint;
  for (const d of [old, recent]) await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers });
  await sql`update deliveries set acked_at = now() - interval '25 hours' where id = ${old.id}`.execute(db);

  // Abandoned uploads: one that never finished sealing, one that never became a delivery.
  const orphan = await sealPackage(old.ctx, { manifest: manifestInput(), documents: [{ name: 'a.pdf', mime: 'application/pdf', stream: Readable.from([Buffer.from('x')]) }] });
  await sql`update packages set created_at = now() - interval '2 days' where id = ${orphan.packageId}`.execute(db);
  const stuck = await sealPackage(old.ctx, { manifest: manifestInput(), documents: [{ name: 'a.pdf', mime: 'application/pdf', stream: Readable.from([Buffer.from('x')]) }] });
  await sql`update packages set status = 'SEALING', created_at = now() - interval '2 hours' where id = ${stuck.packageId}`.execute(db);

  const result = await purgeExpired(old.ctx, { graceHours: ts.config.PACKAGE_RETENTION_HOURS, batch: 1 });
  t.same(result, { purged: 1, abandoned: 2 });
  const pkg = await db.selectFrom('packages').selectAll().where('id', '=', old.sealed.packageId).executeTakeFirstOrThrow();
  t.match(pkg, { status: 'PURGED', wrapped_key: null, purged_at: Date });
  t.equal((await db.selectFrom('package_chunks').select('seq').where('package_id', '=', old.sealed.packageId).execute()).length, 0, 'ciphertext gone');
  const gone = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${old.id}/package`, headers });
  t.equal(gone.statusCode, 410);
  t.equal(gone.json().code, 'POSTBUD_STORAGE_PACKAGE_PURGED');
  t.equal((await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${recent.id}/package`, headers })).statusCode, 200, 'inside the grace period it can still be fetched');
  t.equal((await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${pending.id}/package`, headers })).statusCode, 200, 'unacknowledged ones are never purged');
  const d = await db.selectFrom('deliveries').select(['fingerprint', 'state']).where('id', '=', old.id).executeTakeFirstOrThrow();
  t.equal(d.state, 'DELIVERED');
  t.ok(d.fingerprint, 'the fingerprint stays as evidence');
  t.ok(fp);
  const events = await db.selectFrom('message_events').select('type').where('message_id', '=', old.messageId).orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['SEALED', 'DELIVERED', 'PURGED']);
  t.same(await purgeExpired(old.ctx, { graceHours: 24 }), { purged: 0, abandoned: 0 }, 'nothing more to do');

  // The background sweep runs at start-up and on its period.
  await sql`update deliveries set acked_at = now() - interval '25 hours' where id = ${recent.id}`.execute(db);
  const bg = await service.startBackground!(ts.deps);
  await waitFor('the background sweep purging it', async () => (await db.selectFrom('packages').select('status').where('id', '=', recent.sealed.packageId).executeTakeFirstOrThrow()).status === 'PURGED', 60_000);
  await bg.stop();
  t.equal((await db.selectFrom('packages').select('status').where('id', '=', recent.sealed.packageId).executeTakeFirstOrThrow()).status, 'PURGED');
});
