import t from 'tap';
import { isValidOrgnr, orgnrForName, withOrgnrCheckDigit } from '../../../shared/ids/orgnr.js';
import { birthYear, decodePersonId, invalidPersonIds, isValidPersonId, makeFnr, personIdPolicy, syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { loadConfig, syntheticPersonIdsAllowed } from '../../../shared/config/config.js';
import { CertificateError, checkEncryptionCertificate, decodeCertificate } from '../../../shared/registry/certificate.js';
import { contactUsable, monthsBefore } from '../../../shared/registry/contact-rule.js';
import { createDevCertificate } from '../../../shared/registry/dev-certificate.js';

t.test('personIds', async (t) => {
  const ids = syntheticPersonIdList(2000);
  t.equal(new Set(ids).size, 2000);
  t.ok(ids.every((id) => isValidPersonId(id, { synthetic: true })), 'synthetic ids are valid where synthetic ids are allowed');
  t.ok(ids.every((id) => decodePersonId(id)?.synthetic === true), 'every generated id is a synthetic (Tenor, month + 80) one');
  t.notOk(ids.some((id) => isValidPersonId(id, { synthetic: false })), 'and none passes where they are not (production)');
  t.same(syntheticPersonIdList(3, 10), ids.slice(10, 13), 'deterministic');
  t.same(syntheticPersonIdList(0), []);
  const d = makeFnr(new Date(Date.UTC(1985, 6, 3)), 218, true) ?? makeFnr(new Date(Date.UTC(1985, 6, 3)), 219, true)!;
  t.ok(isValidPersonId(d, { synthetic: false }), 'D-number (day + 40)');
  t.equal(d[0], '4');
  t.notOk(isValidPersonId('12345678901'), 'bad check digits');
  t.notOk(isValidPersonId('3102000' + '0000'), 'no 31 February');
  t.notOk(isValidPersonId('1234'), 'length');
  t.notOk(isValidPersonId(12345678901), 'not a string');
  const valid = ids[0]!;
  t.notOk(isValidPersonId(valid.slice(0, 10) + String((Number(valid[10]) + 1) % 10)), 'one digit off');
  t.same(invalidPersonIds([valid, 'x', 'x', '00000000000'], { synthetic: true }), ['x', '00000000000']);
  let skipped = 0;
  for (let i = 0; i < 60; i++) if (makeFnr(new Date(Date.UTC(1990, 0, 1)), i) === undefined) skipped++;
  t.ok(skipped > 0, 'some individual numbers have no valid check digits and are skipped');
});

/** The first id for a birth date with individual numbers from `from`, whatever its check digits allow. */
const fnrFor = (y: number, m: number, d: number, from: number, dnr = false, synthetic: 0 | 40 | 80 = 0): string => {
  for (let i = from; i < from + 40; i++) {
    const id = makeFnr(new Date(Date.UTC(y, m - 1, d)), i, dnr, synthetic);
    if (id) return id;
  }
  throw new Error('no id');
};

t.test('the century comes from the individual number (Skatteetaten ranges)', async (t) => {
  const real = { synthetic: false };
  // Check digits right, date impossible once the century is known.
  // 29.02.00 with an individual number below 500 (Date would roll 29.02.1900 over to 1 March).
  t.notOk(isValidPersonId(fnrFor(2000, 2, 29, 0), real), '29.02.1900 (individual 000-499 is 1900-1999; 1900 was no leap year)');
  t.ok(isValidPersonId(fnrFor(2000, 2, 29, 500), real), '29.02.2000 (individual 500-999 with YY 00-39)');
  t.notOk(isValidPersonId(fnrFor(2030, 1, 1, 500), real, new Date('2026-12-01T00:00:00Z')), 'a birth date in the future (2030)');
  t.notOk(isValidPersonId(fnrFor(2026, 12, 2, 500), real, new Date('2026-12-01T00:00:00Z')), 'tomorrow');
  t.ok(isValidPersonId(fnrFor(2026, 11, 30, 500), real, new Date('2026-12-01T00:00:00Z')), 'yesterday');
  t.ok(isValidPersonId(fnrFor(1870, 5, 17, 500), real), '1854-1899: individual 500-749 with YY 54-99');
  t.ok(isValidPersonId(fnrFor(1945, 5, 8, 900), real), '1940-1999: individual 900-999 with YY 40-99');
  t.notOk(isValidPersonId(fnrFor(1945, 5, 8, 760), real), 'individual 750-899 with YY 40-99 belongs to no century');
  t.notOk(isValidPersonId(fnrFor(1950, 5, 8, 520), real), 'individual 500-749 with YY 40-53 belongs to no century');
  t.equal(birthYear(85, 123), 1985);
  t.equal(birthYear(5, 123), 1905);
  t.equal(birthYear(5, 612), 2005);
  t.equal(birthYear(60, 612), 1860);
  t.equal(birthYear(60, 950), 1960);
  t.equal(birthYear(45, 800), undefined);
  t.equal(decodePersonId(fnrFor(1985, 7, 3, 218, true))?.kind, 'dnr');
  t.same(decodePersonId(fnrFor(1985, 7, 3, 218))?.birthDate, new Date(Date.UTC(1985, 6, 3)));
});

t.test('synthetic test identities only where allowed', async (t) => {
  const cases = { tenor: fnrFor(1985, 7, 3, 218, false, 80), 'tenor D-number': fnrFor(1985, 7, 3, 218, true, 80), nav: fnrFor(1985, 7, 3, 218, false, 40), 'nav D-number': fnrFor(1985, 7, 3, 218, true, 40) };
  for (const [name, id] of Object.entries(cases)) {
    t.ok(isValidPersonId(id, { synthetic: true }), `${name} (${id.slice(2, 4)} as month) accepted when synthetic ids are allowed`);
    t.notOk(isValidPersonId(id, { synthetic: false }), `${name} refused when they are not`);
  }
  t.notOk(isValidPersonId(fnrFor(2000, 2, 29, 0, false, 80), { synthetic: true }), 'a synthetic id still needs a real date');
  t.equal(syntheticPersonIdsAllowed(loadConfig({ NODE_ENV: 'development' })), true, 'on by default in development');
  t.equal(syntheticPersonIdsAllowed(loadConfig({ NODE_ENV: 'test' })), true, 'and in test');
  t.equal(syntheticPersonIdsAllowed({ NODE_ENV: 'production', SYNTHETIC_PERSON_IDS: undefined }), false, 'off by default in production');
  t.equal(syntheticPersonIdsAllowed({ NODE_ENV: 'production', SYNTHETIC_PERSON_IDS: true }), true, 'unless the setting turns them on');
  t.equal(syntheticPersonIdsAllowed(loadConfig({ NODE_ENV: 'development', SYNTHETIC_PERSON_IDS: 'false' })), false, 'the setting turns them off anywhere');
  t.equal(personIdPolicy().synthetic, false, 'a process that read no configuration accepts no synthetic id');
});

t.test('orgnr', async (t) => {
  t.ok(isValidOrgnr('984661185'), 'Digipost');
  t.ok(isValidOrgnr('922020175'), 'e-Boks');
  t.notOk(isValidOrgnr('984661186'));
  t.notOk(isValidOrgnr('98466118'));
  t.notOk(isValidOrgnr(984661185));
  const a = orgnrForName('Arbeids- og velferdsetaten');
  t.ok(isValidOrgnr(a));
  t.equal(orgnrForName('Arbeids- og velferdsetaten'), a, 'stable');
  t.not(orgnrForName('Arbeids- og velferdsetaten', new Set([a])), a, 'avoids taken numbers');
  t.throws(() => withOrgnrCheckDigit('123'));
});

t.test('18-month rule', async (t) => {
  const now = new Date('2026-08-31T12:00:00Z');
  t.equal(monthsBefore(now, 18).toISOString(), '2025-02-28T12:00:00.000Z', 'clamped to the end of February');
  t.equal(monthsBefore(new Date('2026-03-15T00:00:00Z'), 18).toISOString(), '2024-09-15T00:00:00.000Z');
  const limit = monthsBefore(now, 18);
  const before = new Date(limit.getTime() - 1);
  t.equal(contactUsable(limit, null, now), true, 'exactly 18 months is still usable');
  t.equal(contactUsable(before, null, now), false);
  t.equal(contactUsable(before, limit, now), true, 'a later verification counts');
  t.equal(contactUsable(null, before, now), false);
  t.equal(contactUsable(null, null, now), false);
  t.equal(contactUsable(undefined, new Date(now), now), true);
});

t.test('encryption certificates', async (t) => {
  const good = createDevCertificate({ commonName: 'Good', orgnr: '984661185' });
  const checked = checkEncryptionCertificate(decodeCertificate(good.certPem));
  t.equal(checked.keyBits, 2048);
  t.match(checked.subject, /CN=Good/);
  t.ok(checked.der.equals(good.der));
  t.ok(decodeCertificate(good.der.toString('base64')).equals(good.der), 'base64 DER is accepted');
  t.ok(decodeCertificate(`\n${good.der.toString('base64').replace(/(.{64})/g, '$1\n')}\n`).equals(good.der), 'wrapped base64 too');
  t.ok(checkEncryptionCertificate(createDevCertificate({ commonName: 'No KU', keyUsage: false }).der), 'no keyUsage extension means unrestricted (RFC 5280)');
  const fault = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return err instanceof CertificateError ? err.reason : 'other';
    }
    return 'none';
  };
  t.equal(fault(() => decodeCertificate('%%%')), 'unparseable');
  t.equal(fault(() => decodeCertificate('   ')), 'unparseable');
  t.equal(fault(() => checkEncryptionCertificate(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]))), 'unparseable');
  t.equal(fault(() => checkEncryptionCertificate(good.der, new Date(Date.now() + 10 * 365 * 86_400_000))), 'expired');
  t.equal(fault(() => checkEncryptionCertificate(good.der, new Date(Date.now() - 86_400_000))), 'not-yet-valid');

  // An EC certificate: parses, but is not RSA.
  const { generateKeyPairSync } = await import('node:crypto');
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, readFileSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(path.join(dir, 'k.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  try {
    execFileSync('openssl', ['req', '-new', '-x509', '-key', path.join(dir, 'k.pem'), '-subj', '/CN=ec', '-days', '2', '-outform', 'DER', '-out', path.join(dir, 'c.der')], { stdio: 'ignore' });
    t.equal(fault(() => checkEncryptionCertificate(readFileSync(path.join(dir, 'c.der')))), 'not-rsa');
  } catch {
    t.pass('openssl not available; EC case skipped');
  }
});
