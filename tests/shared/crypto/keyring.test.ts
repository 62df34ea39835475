import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import t from 'tap';
import { loadConfig } from '../../../shared/config/config.js';
import { ConfigError } from '../../../shared/config/settings.js';
import { createKeyring, devKekFile, keyringFor, KeyringError } from '../../../shared/crypto/keyring.js';
import { testDataDir } from '../../helpers/service.js';

t.test('wrap and unwrap under a KEK, bound to its owner', async (t) => {
  const ring = createKeyring([{ id: 'k1', key: randomBytes(32) }]);
  const secret = randomBytes(32);
  const { kekId, wrapped } = ring.wrap(secret, 'package:a');
  t.equal(kekId, 'k1');
  t.same(ring.unwrap(kekId, wrapped, 'package:a'), secret);
  t.throws(() => ring.unwrap(kekId, wrapped, 'package:b'), KeyringError, 'moved to another row: refused');
  t.throws(() => ring.unwrap('k9', wrapped, 'package:a'), KeyringError);
  t.throws(() => ring.unwrap(kekId, wrapped.subarray(0, 10), 'package:a'), KeyringError);
  t.throws(() => createKeyring([]), KeyringError);
});

t.test('rotation: the new KEK wraps, the old one still unwraps', async (t) => {
  const old = { id: 'old', key: randomBytes(32) };
  const fresh = { id: 'new', key: randomBytes(32) };
  const before = createKeyring([old]).wrap(Buffer.from('k'), 'c');
  const ring = createKeyring([fresh, old]);
  t.equal(ring.currentId, 'new');
  t.same(ring.ids, ['new', 'old']);
  t.same(ring.unwrap(before.kekId, before.wrapped, 'c'), Buffer.from('k'));
  t.equal(ring.wrap(Buffer.from('k'), 'c').kekId, 'new');
});

t.test('KEKS from the environment, a generated one in development, none in production', async (t) => {
  const k = randomBytes(32).toString('base64');
  const config = loadConfig({ KEKS: `a:${k}, b:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'silent' });
  t.same(keyringFor(config).ids, ['a', 'b']);
  t.equal(keyringFor(config), keyringFor(config), 'one keyring per config');
  t.throws(() => loadConfig({ KEKS: 'a:abc' }), ConfigError);
  t.throws(() => loadConfig({ KEKS: `a:${k},a:${k}` }), ConfigError);
  t.throws(() => loadConfig({ KEKS: `bad id:${k}` }), ConfigError);
  t.throws(() => loadConfig({ KEKS: ',' }), ConfigError);

  const dir = testDataDir(t);
  const dev = keyringFor(loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent' }));
  t.ok(existsSync(devKekFile(dir)));
  t.equal(statSync(devKekFile(dir)).mode & 0o777, 0o600, 'readable by its owner only');
  const again = keyringFor(loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent' }));
  t.equal(again.currentId, dev.currentId, 'the file is reused');
  const w = dev.wrap(Buffer.from('x'), 'c');
  t.same(again.unwrap(w.kekId, w.wrapped, 'c'), Buffer.from('x'));

  const prod = loadConfig({ NODE_ENV: 'production', AUTH_ISSUERS: 'https://i=https://i/jwks', DATA_DIR: dir });
  t.throws(() => keyringFor(prod), ConfigError);
});
