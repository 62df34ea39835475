import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import t from 'tap';
import { loadConfig } from '../../shared/config/config.js';
import { createTokenVerifier, TokenError } from '../../shared/auth/verifier.js';
import { consumer } from '../helpers/tokens.js';

t.test('an issuer configured with a JWKS URL is fetched over HTTP', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'mp-1', alg: 'RS256', use: 'sig' };
  let fetches = 0;
  const server = http.createServer((req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwk`;
  const issuer = 'https://test.maskinporten.no/';

  const config = loadConfig({ AUTH_ISSUERS: `${issuer}=${jwksUrl}`, AUTH_AUDIENCE: 'postbud-test', NODE_ENV: 'production' });
  const verifier = createTokenVerifier({ issuers: config.AUTH_ISSUERS!, audience: config.AUTH_AUDIENCE, clockToleranceS: 0 });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'mp-1' }).setIssuer(issuer).setAudience('postbud-test').setIssuedAt().setExpirationTime('2m').sign(privateKey);

  const p = await verifier.verify(await sign({ scope: 'postbud:send postbud:lookup', consumer: consumer('974760673') }));
  t.equal(p.kind, 'client');
  t.same(p.kind === 'client' ? [...p.scopes] : [], ['postbud:send', 'postbud:lookup']);
  await verifier.verify(await sign({ scope: 'postbud:send', consumer: consumer('974760673') }));
  t.equal(fetches, 1, 'the key set is cached between tokens');

  const err = await verifier.verify(await sign({ scope: 'x' })).catch((e: unknown) => e);
  t.ok(err instanceof TokenError && err.reason === 'no-subject', 'a token naming no org and no person is refused');
});
