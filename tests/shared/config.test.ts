import { readFileSync } from 'node:fs';
import t from 'tap';
import { ConfigError, loadConfig } from '../../shared/config/config.js';
import { settings } from '../../shared/config/settings.js';

t.test('defaults give a working development configuration', async (t) => {
  const c = loadConfig({});
  t.equal(c.REGISTRY_PORT, 3001);
  t.equal(c.NOTIFICATION_PORT, 3004);
  t.equal(c.DATABASE_URL, undefined, 'no DATABASE_URL means the embedded Postgres');
  t.equal(c.REDIS_URL, undefined, 'no REDIS_URL means the PostgreSQL queue backend');
  t.equal(c.AUTH_ISSUERS, undefined, 'the development issuer');
});

t.test('a wrong value stops start-up with a message naming the variable', async (t) => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ REGISTRY_PORT: 'abc' }, 'REGISTRY_PORT', /integer/],
    [{ REGISTRY_PORT: '70000' }, 'REGISTRY_PORT', /between/],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', /postgres/],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL', /URL/],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL', /redis/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /one of/],
    [{ QUEUE_PREFIX: 'Bad-Prefix' }, 'QUEUE_PREFIX', /must match/],
    [{ AUTH_ISSUERS: 'no-equals-sign' }, 'AUTH_ISSUERS', /issuer/],
    [{ NODE_ENV: 'production' }, 'AUTH_ISSUERS', /production/],
  ];
  for (const [env, name, why] of cases) {
    const err = t.throws(() => loadConfig(env)) as unknown as ConfigError;
    t.ok(err instanceof ConfigError, `${name} gives a ConfigError`);
    t.match(err.message, name, `message names ${name}`);
    t.match(err.message, why);
  }
});

t.test('several wrong values are all reported at once', async (t) => {
  const err = t.throws(() => loadConfig({ REGISTRY_PORT: 'x', LOG_LEVEL: 'y' })) as unknown as Error;
  t.match(err.message, /REGISTRY_PORT/);
  t.match(err.message, /LOG_LEVEL/);
});

t.test('trusted issuers are parsed from issuer=jwks pairs', async (t) => {
  const c = loadConfig({ AUTH_ISSUERS: 'https://maskinporten.no/=https://maskinporten.no/jwk, https://idporten.no=/etc/idporten.json' });
  t.same(c.AUTH_ISSUERS, [
    { issuer: 'https://maskinporten.no/', jwks: 'https://maskinporten.no/jwk' },
    { issuer: 'https://idporten.no', jwks: '/etc/idporten.json' },
  ]);
  t.equal(loadConfig({ RATE_LIMIT_PER_MINUTE: '10', NODE_ENV: 'test' }).RATE_LIMIT_PER_MINUTE, 10);
});

t.test('booleans are read strictly', async (t) => {
  const { asBool } = await import('../../shared/config/settings.js');
  t.equal(asBool('yes', 'X'), true);
  t.equal(asBool('off', 'X'), false);
  t.throws(() => asBool('maybe', 'X'), /X: must be true or false/);
});

t.test('the README settings table lists every setting', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const name of Object.keys(settings)) t.match(readme, new RegExp('\\| `' + name + '` \\|'), `${name} is documented`);
});
