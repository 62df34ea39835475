import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SERVICES } from '../../scripts/services.js';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { createLogger } from '../../shared/logging/logger.js';
import { projectRoot } from '../../shared/runtime/project-root.js';
import { testDeps } from '../helpers/service.js';
import { captureLog } from '../helpers/log-capture.js';

/** A personId-shaped run of digits that appears nowhere else in the code or the logs. */
const PID = '29047338164';
const pct = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');

/** The ways a URL can spell a personId that a pattern on the raw URL misses. */
const SPELLINGS = [PID, pct(PID), `%20${PID}`, `${PID}9`, `0${PID}`, `${PID.slice(0, 6)}%20${PID.slice(6)}`, `${PID.slice(0, 6)}-${PID.slice(6)}`, `+${PID}`];

const capture = captureLog;

for (const mod of SERVICES) {
  t.test(`${mod.name}: no personId, however the URL spells it, and no query string reach the log`, async (t) => {
    const { lines, stream } = capture();
    const deps = await testDeps(t, { env: { RATE_LIMIT_PER_MINUTE: '1000000' } });
    const app = await mod.buildApp({ ...deps, logger: createLogger(mod.name, 'trace', stream) });
    t.teardown(() => app.close());
    await app.ready();
    const token = await issueDevToken(deps.dataDir, { org: '974760673', scope: Object.values(SCOPES).join(' '), audience: deps.config.AUTH_AUDIENCE });
    const spec = JSON.parse(readFileSync(path.join(projectRoot(), 'openapi', `${mod.name}.json`), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const templates = [...Object.keys(spec.paths), '/v1/no-such-route/{x}'];
    let sent = 0;
    const failed: string[] = [];
    for (const template of templates) {
      const methods = Object.keys(spec.paths[template] ?? { get: {} }).map((m) => m.toUpperCase()) as ('GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH')[];
      for (const spelling of SPELLINGS) {
        const url = `${template.replace(/\{[^}]+\}/g, spelling)}?personId=${spelling}&access_token=${token}&q=${pct(PID)}`;
        for (const method of methods) {
          const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
          if (res.statusCode >= 500 && res.statusCode !== 503) failed.push(`${method} ${url} -> ${res.statusCode}`);
          sent++;
        }
      }
    }
    t.same(failed, [], 'no request failed');
    t.ok(sent > 10 && lines.length > sent, 'every request was logged');
    const raw = lines.join('');
    let decoded = raw;
    for (let i = 0; i < 3; i++) decoded = decoded.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    const digits = decoded.replace(/[\s+\-%]/g, '');
    t.notOk(digits.includes(PID), 'no spelling of the personId in any log line');
    t.notOk(raw.includes(token) || raw.includes(token.split('.')[2]!), 'the bearer token sent as ?access_token= is not logged');
    t.notMatch(raw, /access_token|personId=/, 'no query string is logged');
    const entries = lines.map((l) => JSON.parse(l) as { req?: { route?: string } });
    t.ok(entries.some((e) => e.req?.route === (mod.name === 'ingestion' ? '/v1/capabilities/:personId' : e.req?.route)), 'requests are logged by route template');
    t.ok(entries.some((e) => e.req?.route === '(unmatched)'), 'a request that matches no route is logged without its path');
  });
}
