import { SignJWT } from 'jose';
import t, { type Test } from 'tap';
import { DEV_ISSUER, issueDevToken } from '../../shared/auth/dev-issuer.js';
import { BEARER_SECURITY, citizenOf, clientOf, requireCitizen, requireClient } from '../../shared/auth/guards.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { createApp } from '../../shared/app/create-app.js';
import { consumer, forgeToken, signWithDevKey } from '../helpers/tokens.js';
import { testDeps } from '../helpers/service.js';

const ORG = '991825827';
const now = () => Math.floor(Date.now() / 1000);

t.test('tokens and guards', async (t) => {
  const deps = await testDeps(t);
  const app = await createApp({ name: 'registry', description: 'auth test' }, deps);
  app.get('/send', { preHandler: requireClient(SCOPES.send), schema: { security: BEARER_SECURITY } }, async (req) => ({ org: clientOf(req).org }));
  app.get('/krr', { preHandler: requireClient(SCOPES.lookupContact, SCOPES.krrContact) }, async (req) => ({ org: clientOf(req).org }));
  app.get('/me', { preHandler: requireCitizen() }, async (req) => ({ pid: citizenOf(req).pid }));
  app.post('/me', { preHandler: requireCitizen('idporten-loa-substantial') }, async (req) => ({ pid: citizenOf(req).pid }));
  t.teardown(() => app.close());
  const token = (req: Parameters<typeof issueDevToken>[1]) => issueDevToken(deps.dataDir, req);
  const get = (url: string, bearer?: string, method: 'GET' | 'POST' = 'GET') =>
    app.inject({ method, url, headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } });
  const aud = deps.config.AUTH_AUDIENCE;

  await t.test('a machine client with the scope gets through, as its own org', async (t) => {
    const res = await get('/send', await token({ org: ORG, scope: 'postbud:send postbud:lookup', audience: aud }));
    t.equal(res.statusCode, 200);
    t.same(res.json(), { org: ORG });
  });

  await t.test('KRR scopes are accepted where the route allows them', async (t) => {
    const res = await get('/krr', await token({ org: ORG, scope: SCOPES.krrContact, audience: aud }));
    t.equal(res.statusCode, 200);
  });

  const rejected = async (t: Test, res: Awaited<ReturnType<typeof get>>, status: number, slug: string) => {
    t.equal(res.statusCode, status);
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    t.equal(res.json().type, `https://postbud.dev/problems/${slug}`);
  };

  await t.test('no token, a malformed header, garbage', async (t) => {
    await rejected(t, await get('/send'), 401, 'unauthenticated');
    const basic = await app.inject({ method: 'GET', url: '/send', headers: { authorization: 'Basic abc' } });
    await rejected(t, basic, 401, 'unauthenticated');
    t.equal(basic.headers['www-authenticate'], 'Bearer');
    await rejected(t, await get('/send', 'not.a.jwt'), 401, 'unauthenticated');
    await rejected(t, await get('/send', 'abc'), 401, 'unauthenticated');
  });

  await t.test('a missing scope is 403 naming what is required', async (t) => {
    const res = await get('/send', await token({ org: ORG, scope: 'postbud:lookup', audience: aud }));
    await rejected(t, res, 403, 'insufficient-scope');
    t.same(res.json().required, ['postbud:send']);
    await rejected(t, await get('/send', await token({ org: ORG, scope: 'postbud:sendx', audience: aud })), 403, 'insufficient-scope');
  });

  await t.test('a forged token (right issuer and kid, wrong key) is refused', async (t) => {
    const forged = await forgeToken(deps.dataDir, { aud, exp: now() + 60, scope: 'postbud:send', consumer: consumer(ORG) });
    await rejected(t, await get('/send', forged), 401, 'unauthenticated');
  });

  await t.test('an expired token is refused with its own type', async (t) => {
    const expired = await signWithDevKey(deps.dataDir, { iss: DEV_ISSUER, aud, iat: now() - 3660, exp: now() - 3600, scope: 'postbud:send', consumer: consumer(ORG) });
    await rejected(t, await get('/send', expired), 401, 'token-expired');
  });

  await t.test('wrong audience, untrusted issuer, missing exp', async (t) => {
    await rejected(t, await get('/send', await token({ org: ORG, scope: 'postbud:send', audience: 'someone-else' })), 401, 'unauthenticated');
    const otherIss = await signWithDevKey(deps.dataDir, { iss: 'https://evil.example', aud, exp: now() + 60, scope: 'postbud:send', consumer: consumer(ORG) });
    await rejected(t, await get('/send', otherIss), 401, 'unauthenticated');
    const noExp = await signWithDevKey(deps.dataDir, { iss: DEV_ISSUER, aud, scope: 'postbud:send', consumer: consumer(ORG) });
    await rejected(t, await get('/send', noExp), 401, 'unauthenticated');
  });

  await t.test('algorithms outside the allowlist are refused (HS256 with a guessable secret, none)', async (t) => {
    const hs = await new SignJWT({ iss: DEV_ISSUER, aud, exp: now() + 60, scope: 'postbud:send', consumer: consumer(ORG) })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('x'.repeat(32)));
    await rejected(t, await get('/send', hs), 401, 'unauthenticated');
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none' })}.${b64({ iss: DEV_ISSUER, aud, exp: now() + 60, scope: 'postbud:send', consumer: consumer(ORG) })}.`;
    await rejected(t, await get('/send', none), 401, 'unauthenticated');
  });

  await t.test('a consumer that is not an ISO 6523 orgnr is refused', async (t) => {
    const bad = await signWithDevKey(deps.dataDir, { iss: DEV_ISSUER, aud, exp: now() + 60, scope: 'postbud:send', consumer: { authority: 'iso6523-actorid-upis', ID: '0192:12345' } });
    await rejected(t, await get('/send', bad), 401, 'unauthenticated');
    const noSubject = await signWithDevKey(deps.dataDir, { iss: DEV_ISSUER, aud, exp: now() + 60, scope: 'postbud:send' });
    await rejected(t, await get('/send', noSubject), 401, 'unauthenticated');
  });

  await t.test('forged times: an iat in the future, a lifetime over the maximum, no iat', async (t) => {
    const max = deps.config.AUTH_MAX_TOKEN_LIFETIME_S;
    t.equal(max, 300, 'the default maximum lifetime is 300 s');
    const claims = { iss: DEV_ISSUER, aud, scope: 'postbud:send', consumer: consumer(ORG) };
    const sign = (c: Record<string, unknown>) => signWithDevKey(deps.dataDir, { ...claims, ...c });
    const ok = await get('/send', await sign({ iat: now(), exp: now() + max }));
    t.equal(ok.statusCode, 200, 'a token of exactly the maximum lifetime is accepted');
    const future = await get('/send', await sign({ iat: now() + 3600, exp: now() + 3660 }));
    await rejected(t, future, 401, 'unauthenticated');
    t.match(future.json().detail, /issued in the future/);
    t.match(future.headers['www-authenticate'], /invalid_token/);
    const skew = await get('/send', await sign({ iat: now() + deps.config.AUTH_CLOCK_TOLERANCE_S + 5, exp: now() + 100 }));
    await rejected(t, skew, 401, 'unauthenticated');
    const long = await get('/send', await sign({ iat: now(), exp: now() + max + 1 }));
    await rejected(t, long, 401, 'unauthenticated');
    t.match(long.json().detail, /lifetime/);
    const day = await get('/send', await sign({ iat: now() - 60, exp: now() + 86_400 }));
    await rejected(t, day, 401, 'unauthenticated');
    const noIat = await get('/send', await sign({ exp: now() + 60 }));
    await rejected(t, noIat, 401, 'unauthenticated');
    const cited = await get('/me', await signWithDevKey(deps.dataDir, { iss: DEV_ISSUER, aud, pid: '01017012345', acr: 'idporten-loa-high', iat: now(), exp: now() + 7200 }));
    await rejected(t, cited, 401, 'unauthenticated');
  });

  await t.test('a consumer.ID whose orgnr fails its check digit is refused', async (t) => {
    const valid = await signWithDevKey(deps.dataDir, { iss: DEV_ISSUER, aud, iat: now(), exp: now() + 60, scope: 'postbud:send', consumer: consumer(ORG) });
    t.equal((await get('/send', valid)).statusCode, 200);
    for (const org of ['991825828', '991825820', '000000001', '123456789']) {
      const res = await get('/send', await signWithDevKey(deps.dataDir, { iss: DEV_ISSUER, aud, iat: now(), exp: now() + 60, scope: 'postbud:send', consumer: consumer(org) }));
      await rejected(t, res, 401, 'unauthenticated');
      t.match(res.json().detail, /check digit/, `${org} is refused for its check digit`);
    }
  });

  await t.test('citizens and machine clients cannot use each other’s routes', async (t) => {
    const citizen = await token({ pid: '01017012345', acr: 'idporten-loa-substantial', audience: aud });
    await rejected(t, await get('/send', citizen), 403, 'forbidden');
    await rejected(t, await get('/me', await token({ org: ORG, scope: 'postbud:admin', audience: aud })), 403, 'forbidden');
    const me = await get('/me', citizen);
    t.equal(me.statusCode, 200);
    t.same(me.json(), { pid: '01017012345' });
  });

  await t.test('changes need acr substantial or higher', async (t) => {
    const low = await token({ pid: '01017012345', acr: 'idporten-loa-low', audience: aud });
    t.equal((await get('/me', low)).statusCode, 200, 'reading is fine at low');
    await rejected(t, await get('/me', low, 'POST'), 403, 'insufficient-security-level');
    t.equal((await get('/me', await token({ pid: '01017012345', acr: 'idporten-loa-high', audience: aud }), 'POST')).statusCode, 200);
  });
});
