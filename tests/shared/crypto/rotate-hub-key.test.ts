import { createLocalJWKSet, compactVerify, type JSONWebKeySet } from 'jose';
import t from 'tap';
import { rotateHubKey } from '../../../scripts/commands/rotate-hub-key.js';
import { UsageError } from '../../../scripts/commands/token.js';
import { loadConfig } from '../../../shared/config/config.js';
import { HubKeys, KEY_PUBLISH_LEAD_MS } from '../../../shared/crypto/hub-keys.js';
import { keyringFor } from '../../../shared/crypto/keyring.js';
import { testDatabase } from '../../helpers/database.js';
import { testDataDir } from '../../helpers/service.js';

t.test('postbud rotate-hub-key: a new signing key, and what was signed before still verifies', async (t) => {
  const { url, db } = await testDatabase(t);
  const config = loadConfig({ DATABASE_URL: url, DATA_DIR: testDataDir(t), LOG_LEVEL: 'silent' });
  const running = new HubKeys(db.kysely, keyringFor(config));
  const oldJws = await running.sign(Buffer.from('{"receipt":1}'), { typ: 'postbud-receipt+jws' });
  const oldKid = (await running.signingKey()).kid;

  let printed = '';
  const newKid = await rotateHubKey(config, (s) => (printed += s));
  t.not(newKid, oldKid);
  const answer = JSON.parse(printed) as { signingKey: string; signsFrom: string; published: string[] };
  t.same(answer, { signingKey: newKid, signsFrom: answer.signsFrom, published: [newKid, oldKid] }, 'the new key is published at once');
  const signsFrom = Date.parse(answer.signsFrom);
  t.ok(signsFrom - Date.now() >= KEY_PUBLISH_LEAD_MS - 5000, 'and signs one JWKS cache lifetime (plus a minute) later');
  t.equal((await new HubKeys(db.kysely, keyringFor(config)).signingKey()).kid, oldKid, 'a process starting now still signs with the old key');

  // Processes caching the old key switch exactly at activation, not a cache period later.
  let clock = signsFrom - 1000;
  const cached = new HubKeys(db.kysely, keyringFor(config), () => clock);
  t.equal((await cached.signingKey()).kid, oldKid);
  clock = signsFrom;
  t.equal((await cached.signingKey()).kid, newKid, 'a running process switches at signsFrom');

  const fresh = new HubKeys(db.kysely, keyringFor(config), () => signsFrom + 1);
  t.equal((await fresh.signingKey()).kid, newKid, 'a process starting then signs with the new key');
  const jwks = createLocalJWKSet((await fresh.jwks()) as JSONWebKeySet);
  t.equal((await compactVerify(oldJws, jwks)).protectedHeader.kid, oldKid, 'an old receipt verifies against the published JWKS');
  const newJws = await fresh.sign(Buffer.from('{"receipt":2}'));
  t.equal((await compactVerify(newJws, jwks)).protectedHeader.kid, newKid);

  printed = '';
  const urgent = await rotateHubKey(config, (s) => (printed += s), ['--now']);
  t.equal((await new HubKeys(db.kysely, keyringFor(config)).signingKey()).kid, urgent, '--now (a compromised key) signs at once');
  t.equal((JSON.parse(printed) as { published: string[] }).published.length, 3, 'every key stays published');
  await t.rejects(rotateHubKey(config, () => undefined, ['--later']), { message: /usage/ });

  const err = await rotateHubKey(loadConfig({ LOG_LEVEL: 'silent' })).catch((e: unknown) => e);
  t.ok(err instanceof UsageError, 'without DATABASE_URL it is a usage error');
  t.match(String(err), /DATABASE_URL/);
});
