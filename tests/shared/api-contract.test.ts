/**
 * What the documents say about every operation holds on the running services: the security an
 * operation lists is exactly what its guard enforces (scopes one by one, the citizen acr), a
 * body in a media type it does not list is a 415 naming what it takes, and error answers carry
 * the media type and problem types documented for their status.
 */
import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { ACR_LEVELS, SCOPES } from '../../shared/auth/scopes.js';
import { EXAMPLE } from '../../shared/app/example-values.js';
import { commonProblems, PROBLEM_BASE } from '../../shared/errors/problem.js';
import { apiWorld, documentedRequest, type Json } from '../helpers/api-world.js';
import { responseValidator } from '../helpers/spec-validator.js';

const ALL_SCOPES = Object.values(SCOPES);

t.setTimeout(15 * 60_000);

t.test('security, 415 and problem types as documented, on every operation', async (t) => {
  const world = await apiWorld(t);
  const validators = Object.fromEntries(Object.entries(world.specs).map(([name, spec]) => [name, responseValidator(spec)]));
  // problem+json names its type; the next-move routes (/api/, next-move's error shape) carry the same problem's code.
  const byCode = new Map(Object.values(commonProblems).map((p) => [p.code, PROBLEM_BASE + p.slug]));
  const problemType = (res: LightMyRequestResponse) => {
    if (res.body === '') return ''; // an answer without a body (200 or 204) names no problem
    const body = JSON.parse(res.body) as { type?: string; code?: string };
    return body.type ?? byCode.get(body.code ?? '') ?? '';
  };
  let guarded = 0;
  let bodies = 0;
  for (const o of world.operations) {
    const name = `${o.service} ${o.method} ${o.path}`;
    const req = documentedRequest(o, world.specs[o.service]!);
    const audience = world.services[o.service]!.config.AUTH_AUDIENCE;
    const security = (o.op.security ?? []) as Json[];
    const scopes = security.flatMap((s) => (s.maskinporten ?? []) as string[]);
    const send = async (token: string) => world.inject(o, { ...req, token });

    if (scopes.length > 0) {
      guarded++;
      const org = scopes.includes(SCOPES.provider) ? EXAMPLE.providerOrgnr : EXAMPLE.senderOrgnr;
      const others = ALL_SCOPES.filter((s) => !scopes.includes(s));
      const without = await send(await issueDevToken(world.dataDir, { org, scope: others.join(' '), audience }));
      t.equal(problemType(without), 'https://postbud.dev/problems/insufficient-scope', `${name}: every scope it does not list is refused`);
      t.same(validators[o.service]!(o.op, without), [], `${name}: the 403 is documented`);
      for (const scope of scopes) {
        const res = await send(await issueDevToken(world.dataDir, { org, scope, audience }));
        t.not(problemType(res), 'https://postbud.dev/problems/insufficient-scope', `${name}: ${scope} alone is enough`);
      }
      const citizen = await send(await issueDevToken(world.dataDir, { pid: EXAMPLE.personId, acr: 'idporten-loa-high', audience }));
      t.equal(citizen.statusCode, 403, `${name}: a citizen token is refused`);
    }
    if (security.some((s) => 'idporten' in s)) {
      guarded++;
      const min = String(o.op['x-postbud-acr']);
      t.ok((ACR_LEVELS as readonly string[]).includes(min), `${name}: states its acr`);
      const below = ACR_LEVELS.slice(0, ACR_LEVELS.indexOf(min as (typeof ACR_LEVELS)[number]));
      for (const acr of below) {
        const res = await send(await issueDevToken(world.dataDir, { pid: EXAMPLE.personId, acr, audience }));
        t.equal(problemType(res), 'https://postbud.dev/problems/insufficient-security-level', `${name}: acr ${acr} is below ${min}`);
      }
      const at = await send(await issueDevToken(world.dataDir, { pid: EXAMPLE.personId, acr: min, audience }));
      t.not(at.statusCode, 401, `${name}: acr ${min} passes`);
      t.not(problemType(at), 'https://postbud.dev/problems/insufficient-security-level', `${name}: acr ${min} passes`);
      const machine = await send(await issueDevToken(world.dataDir, { org: EXAMPLE.senderOrgnr, scope: ALL_SCOPES.join(' '), audience }));
      t.equal(machine.statusCode, 403, `${name}: a machine token is refused`);
    }

    const accepted = Object.keys(((o.op.requestBody as Json | undefined)?.content ?? {}) as Json);
    if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(o.method)) {
      bodies++;
      const token = await world.tokenFor(o);
      // Two media types the operation does not list (an upload of documents takes text/plain).
      const probes = ['text/plain', 'application/xml', 'application/x-postbud-unknown'].filter((c) => !accepted.includes(c)).slice(0, 2);
      t.equal(probes.length, 2, `${name}: two unlisted media types to probe`);
      for (const contentType of probes) {
        const res = await world.inject(o, { ...req, token, body: { contentType, payload: 'hello' } });
        t.equal(res.statusCode, 415, `${name}: ${contentType} is a 415`);
        t.same((JSON.parse(res.body) as { accepted?: string[] }).accepted, accepted.length > 0 ? accepted : ['application/json'], `${name}: the 415 lists what it takes`);
        t.same(validators[o.service]!(o.op, res), [], `${name}: the 415 is documented`);
      }
    }
  }
  t.ok(guarded >= 40, `${guarded} guarded operations probed`);
  t.ok(bodies >= 25, `${bodies} body-taking operations probed`);
});

t.test('documented shapes the services used to get wrong', async (t) => {
  const world = await apiWorld(t);
  const op = (service: string, method: string, path: string) => world.operations.find((o) => o.service === service && o.method === method && o.path === path)!;
  const failed = op('notification', 'GET', '/v1/admin/queues/{queue}/failed');
  const res = await world.inject(failed, { path: { queue: 'no-such-queue' }, query: {}, headers: {}, token: await world.tokenFor(failed) });
  t.equal(res.statusCode, 400, 'an unknown queue is a 400 (the params schema), never a 404');
  t.notOk((failed.op.responses as Json)['404'], 'and no 404 is documented for it');

  const imp = op('registry', 'POST', '/v1/admin/persons/import');
  const token = await world.tokenFor(imp);
  const plain = await world.inject(imp, { path: {}, query: {}, headers: {}, token, body: { contentType: 'text/plain', payload: `{"personId":"${EXAMPLE.personId}"}\n` } });
  t.equal(plain.statusCode, 415, 'the import takes only the JSON-lines types it documents');
  const json = await world.inject(imp, { path: {}, query: {}, headers: {}, token, body: { contentType: 'application/json', payload: `{"personId":"${EXAMPLE.personId}"}` } });
  t.equal(json.statusCode, 415, 'not application/json either');

  const senders = op('registry', 'POST', '/v1/admin/senders');
  const ndjson = await world.inject(senders, { path: {}, query: {}, headers: {}, token, body: { contentType: 'application/x-ndjson', payload: '{"orgnr":"822010571","name":"x"}\n' } });
  t.equal(ndjson.statusCode, 415, 'a JSON route in the same plugin as the import does not take JSON lines');

  const letter = op('ingestion', 'POST', '/v1/messages');
  const ref = String((letter.op.requestBody as { content: Record<string, { schema: Json }> }).content['multipart/form-data']!.schema.$ref);
  const parts = ((world.specs.ingestion!.components as Json).schemas as Json)[ref.split('/').pop()!] as Json;
  t.ok((parts.properties as Json).document, 'the file parts are documented as `document`, the name the server requires');

  const validate = responseValidator(world.specs.registry!);
  const lookup = op('registry', 'POST', '/v1/persons/lookup').op;
  const fake = (statusCode: number, body: string, type: string) => ({ statusCode, body, headers: { 'content-type': type } }) as unknown as LightMyRequestResponse;
  t.not(validate(lookup, fake(200, '{"wrong":1}', 'application/json')).length, 0, 'the validator refuses a body the schema does not allow');
  t.not(validate(lookup, fake(418, '{}', 'application/json')).length, 0, 'and an undocumented status');
  t.not(validate(lookup, fake(404, '{"type":"x","title":"t","status":404,"code":"C"}', 'application/json')).length, 0, 'and an error that is not problem+json');
});
