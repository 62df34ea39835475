/**
 * Every documented example, replayed against the four running services (on `postbud seed`'s
 * data), with every answer validated against the document: status, media type, body schema and
 * headers. The spec allows what the server sends; the fuzz test (api-fuzz.test.ts) covers the
 * other direction.
 */
import t from 'tap';
import { EXAMPLE } from '../../shared/app/example-values.js';
import { apiWorld, documentedRequest } from '../helpers/api-world.js';
import { responseValidator } from '../helpers/spec-validator.js';

t.setTimeout(15 * 60_000);

t.test('every documented example gets an answer the document allows', async (t) => {
  const world = await apiWorld(t);
  const validators = Object.fromEntries(Object.entries(world.specs).map(([name, spec]) => [name, responseValidator(spec)]));
  const statuses: Record<string, number> = {};
  for (const o of world.operations) {
    const req = documentedRequest(o, world.specs[o.service]!);
    const res = await world.inject(o, { ...req, token: await world.tokenFor(o) });
    statuses[`${o.service} ${o.method} ${o.path}`] = res.statusCode;
    t.same(validators[o.service]!(o.op, res), [], `${o.service} ${o.method} ${o.path} -> ${res.statusCode}`);
    // Without a token a guarded operation answers its documented 401.
    if (((o.op.security ?? []) as unknown[]).length > 0) {
      const anonymous = await world.inject(o, req);
      t.equal(anonymous.statusCode, 401, `${o.method} ${o.path} without a token`);
      t.same(validators[o.service]!(o.op, anonymous), [], `${o.method} ${o.path} 401 is documented`);
    }
  }
  // The examples are meant to work: the letter, the lookups and the capabilities check succeed.
  t.equal(statuses['ingestion POST /v1/messages'], 201, 'the documented letter is accepted');
  t.equal(statuses['registry POST /v1/persons/lookup'], 200);
  t.equal(statuses['ingestion GET /v1/capabilities/{personId}'], 200);
  t.equal(statuses['registry GET /v1/me'], 200, `the example citizen ${EXAMPLE.personId} is seeded`);
  const ok = Object.values(statuses).filter((s) => s < 300).length;
  t.ok(ok >= Object.keys(statuses).length * 0.6, `most documented examples succeed (${ok} of ${Object.keys(statuses).length})`);
});
