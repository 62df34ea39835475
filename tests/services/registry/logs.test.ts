import { Writable } from 'node:stream';
import t from 'tap';
import { service } from '../../../services/registry/app.js';
import { issueDevToken } from '../../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { createLogger } from '../../../shared/logging/logger.js';
import { testDeps } from '../../helpers/service.js';
import { personIds } from './fixtures.js';

t.test('registry logs carry no personId, e-mail or phone number', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const deps = await testDeps(t);
  const app = await service.buildApp({ ...deps, logger: createLogger('registry', 'info', sink) });
  t.teardown(() => app.close());
  await app.ready();
  const [a, b] = personIds(2);
  const token = await issueDevToken(deps.dataDir, { org: '974760673', scope: `${SCOPES.lookup} ${SCOPES.lookupContact}`, audience: deps.config.AUTH_AUDIENCE });
  const citizen = await issueDevToken(deps.dataDir, { pid: a, acr: 'idporten-loa-high', audience: deps.config.AUTH_AUDIENCE });
  const calls = [
    app.inject({ method: 'PUT', url: '/v1/me/email', headers: { authorization: `Bearer ${citizen}` }, payload: { address: 'secret.person@example.no' } }),
    app.inject({ method: 'PUT', url: '/v1/me/mobile', headers: { authorization: `Bearer ${citizen}` }, payload: { number: '99887766' } }),
    app.inject({ method: 'POST', url: '/v1/persons/lookup', headers: { authorization: `Bearer ${token}`, 'x-purpose': `about ${b}` }, payload: { personIds: [a, b] } }),
    app.inject({ method: 'POST', url: '/v1/persons/lookup', headers: { authorization: `Bearer ${token}` }, payload: { personIds: [a, '12345678901'] } }),
    app.inject({ method: 'POST', url: '/rest/v1/personer', headers: { authorization: `Bearer ${token}` }, payload: { personidentifikatorer: [b] } }),
    app.inject({ method: 'GET', url: `/v1/persons/${a}` }),
  ];
  const results = await Promise.all(calls);
  t.same(results.map((r) => r.statusCode), [200, 200, 200, 400, 200, 404]);
  const log = lines.join('');
  t.ok(lines.length > 5, 'requests were logged');
  for (const secret of [a, b, '12345678901', 'secret.person@example.no', '99887766', '+4799887766']) {
    t.notOk(log.includes(secret), `no ${secret.includes('@') ? 'e-mail' : 'id or number'} in the log`);
  }
});
