import { createLocalJWKSet, compactVerify, type JSONWebKeySet } from 'jose';
import t from 'tap';
import { rotateHubKey } from '../../../scripts/commands/rotate-hub-key.js';
import { UsageError } from '../../../scripts/commands/token.js';
import { loadConfig } from '../../../shared/config/config.js';
import { HubKeys } from '../../../shared/crypto/hub-keys.js';
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
  t.same(JSON.parse(printed), { signingKey: newKid, published: [newKid, oldKid] });

  const fresh = new HubKeys(db.kysely, keyringFor(config));
  t.equal((await fresh.signingKey()).kid, newKid, 'a process starting now signs with the new key');
  const jwks = createLocalJWKSet((await fresh.jwks()) as JSONWebKeySet);
  t.equal((await compactVerify(oldJws, jwks)).protectedHeader.kid, oldKid, 'an old receipt verifies against the published JWKS');
  const newJws = await fresh.sign(Buffer.from('{"receipt":2}'));
  t.equal((await compactVerify(newJws, jwks)).protectedHeader.kid, newKid);

  const err = await rotateHubKey(loadConfig({ LOG_LEVEL: 'silent' })).catch((e: unknown) => e);
  t.ok(err instanceof UsageError, 'without DATABASE_URL it is a usage error');
  t.match(String(err), /DATABASE_URL/);
});
