/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON read field by field */
import t from 'tap';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { AGENCY, devCerts, DIGIPOST, importLines, monthsAgo, personIds, registry } from './fixtures.js';

t.test('KRR-compatible lookup', async (t) => {
  const r = await registry(t);
  const [active, reserved, outdated, deleted, unknown, mobileOnlyFresh] = personIds(6);
  const verified = monthsAgo(2);
  await importLines(r, [
    { personId: active, email: 'ola@example.no', emailVerifiedAt: verified, mobile: '+4799887766', language: 'nb', mailbox: { providerOrgnr: DIGIPOST, address: 'ola#1' } },
    { personId: reserved, reserved: true, email: 'kari@example.no' },
    { personId: outdated, email: 'old@example.no', emailUpdatedAt: monthsAgo(30), mobile: '41234567', mobileUpdatedAt: monthsAgo(20), mailbox: { providerOrgnr: DIGIPOST, address: 'old#3' } },
    { personId: deleted, status: 'DELETED' },
    { personId: mobileOnlyFresh, email: 'stale@example.no', emailUpdatedAt: monthsAgo(24), mobile: '91234567', mailbox: { providerOrgnr: DIGIPOST, address: 'fresh#4' } },
  ]);
  const krrBoth = await r.token({ org: AGENCY, scope: `${SCOPES.krrContact} ${SCOPES.krrDigitalPost}` });

  for (const version of ['v1', 'v2']) {
    await t.test(`/rest/${version}/personer answers with KRR's names and enums`, async (t) => {
      const res = await r.inject('POST', `/rest/${version}/personer`, krrBoth, { personidentifikatorer: [active, reserved, outdated, deleted, unknown] });
      t.equal(res.statusCode, 200);
      const [a, rs, o, d, u] = res.json.personer;
      t.same(a, {
        personidentifikator: active,
        reservasjon: 'NEI',
        status: 'AKTIV',
        varslingsstatus: 'KAN_VARSLES',
        kontaktinformasjon: {
          epostadresse: 'ola@example.no',
          epostadresse_oppdatert: a.kontaktinformasjon.epostadresse_oppdatert,
          epostadresse_sist_verifisert: new Date(verified).toISOString(),
          mobiltelefonnummer: '+4799887766',
          mobiltelefonnummer_oppdatert: a.kontaktinformasjon.mobiltelefonnummer_oppdatert,
        },
        digital_post: { postkasseadresse: 'ola#1', postkasseleverandoeradresse: DIGIPOST },
        sertifikat: devCerts()[0].der.toString('base64'),
        spraak: 'nb',
        spraak_oppdatert: a.spraak_oppdatert,
      });
      t.match(a.kontaktinformasjon.epostadresse_oppdatert, /Z$/);
      t.equal(rs.reservasjon, 'JA');
      t.equal(rs.varslingsstatus, 'KAN_IKKE_VARSLES');
      t.same(Object.keys(o).sort(), ['personidentifikator', 'reservasjon', 'status', 'varslingsstatus'], 'outdated contact info: no contact, mailbox or certificate');
      t.equal(o.varslingsstatus, 'KAN_IKKE_VARSLES');
      t.same(d, { personidentifikator: deleted, reservasjon: 'NEI', status: 'SLETTET', varslingsstatus: 'KAN_IKKE_VARSLES' });
      t.same(u, { personidentifikator: unknown, reservasjon: 'NEI', status: 'IKKE_REGISTRERT', varslingsstatus: 'KAN_IKKE_VARSLES' });
    });
  }

  await t.test('one fresh contact point keeps the person current', async (t) => {
    const res = await r.inject('POST', '/rest/v1/personer', krrBoth, { personidentifikatorer: [mobileOnlyFresh] });
    const p = res.json.personer[0];
    t.equal(p.varslingsstatus, 'KAN_VARSLES');
    t.ok(p.digital_post);
    t.equal(p.kontaktinformasjon.mobiltelefonnummer, '+4791234567');
  });

  await t.test('scopes decide what is returned; reservation always is', async (t) => {
    const contactOnly = await r.token({ org: AGENCY, scope: SCOPES.krrContact });
    let p = (await r.inject('POST', '/rest/v1/personer', contactOnly, { personidentifikatorer: [active] })).json.personer[0];
    t.ok(p.kontaktinformasjon);
    t.equal(p.spraak, 'nb');
    t.notOk(p.digital_post);
    t.notOk(p.sertifikat);
    const dpOnly = await r.token({ org: AGENCY, scope: SCOPES.krrDigitalPost });
    p = (await r.inject('POST', '/rest/v1/personer', dpOnly, { personidentifikatorer: [active] })).json.personer[0];
    t.notOk(p.kontaktinformasjon);
    t.notOk(p.spraak);
    t.ok(p.digital_post);
    t.ok(p.sertifikat);
    const ours = await r.token({ org: AGENCY, scope: `${SCOPES.lookupContact} ${SCOPES.lookupDigitalPost}` });
    p = (await r.inject('POST', '/rest/v2/personer', ours, { personidentifikatorer: [active] })).json.personer[0];
    t.ok(p.kontaktinformasjon && p.digital_post, 'our own scopes work on the KRR API too');
    const basic = await r.token({ org: AGENCY, scope: SCOPES.lookup });
    p = (await r.inject('POST', '/rest/v1/personer', basic, { personidentifikatorer: [reserved] })).json.personer[0];
    t.same(Object.keys(p).sort(), ['personidentifikator', 'reservasjon', 'status', 'varslingsstatus']);
    t.equal(p.reservasjon, 'JA');
    const none = await r.token({ org: AGENCY, scope: SCOPES.provider });
    t.equal((await r.inject('POST', '/rest/v1/personer', none, { personidentifikatorer: [active] })).statusCode, 403);
    t.equal((await r.inject('POST', '/rest/v1/personer', await r.citizen(active), { personidentifikatorer: [active] })).statusCode, 403);
  });

  await t.test('a KRR client posting with KRR headers works unchanged', async (t) => {
    const res = await r.app.inject({
      method: 'POST',
      url: '/rest/v1/personer',
      headers: { authorization: `Bearer ${krrBoth}`, 'content-type': 'application/json;charset=UTF-8', accept: 'application/json' },
      payload: JSON.stringify({ personidentifikatorer: [active] }),
    });
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], /application\/json/);
  });

  await t.test('bad requests', async (t) => {
    let res = await r.inject('POST', '/rest/v1/personer', krrBoth, { personidentifikatorer: ['00000000000'] });
    t.equal(res.statusCode, 400);
    t.same(res.json.invalidPersonIds, ['00000000000']);
    res = await r.inject('POST', '/rest/v1/personer', krrBoth, { personidentifikatorer: personIds(1001) });
    t.equal(res.statusCode, 400);
    res = await r.inject('POST', '/rest/v1/personer', krrBoth, { personIds: [active] });
    t.equal(res.statusCode, 400);
    const audit = await r.inject('GET', `/v1/admin/lookups?org=${AGENCY}&limit=1000`, r.admin);
    t.ok(audit.json.lookups.some((l: any) => l.api === 'krr-v1') && audit.json.lookups.some((l: any) => l.api === 'krr-v2'), 'KRR lookups are audited too');
  });
});
