import t from 'tap';
import { documentedOperations, fillPath } from '../../helpers/routes.js';
import { DIGIPOST, personIds, registry } from './fixtures.js';

t.test('a suspended provider is refused on every provider route of the registry', async (t) => {
  const r = await registry(t);
  const dp = await r.provider(DIGIPOST);
  const [p1] = personIds(1);
  const created = await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p1, address: 'p1#A' });
  t.equal(created.statusCode, 201);
  t.equal((await r.inject('PATCH', `/v1/admin/providers/${DIGIPOST}`, r.admin, { status: 'suspended' })).statusCode, 200);

  const operations = documentedOperations(r.app, '/v1/provider');
  t.ok(operations.length >= 5, 'register, read, change, close, rotate certificate are documented');
  for (const op of operations) {
    // Bodies are irrelevant: the refusal comes before the body is read.
    const res = await r.inject(op.method, fillPath(op.path, { id: String(created.json.id) }), dp, op.method === 'GET' ? undefined : {});
    t.equal(res.statusCode, 403, `${op.method} ${op.path}`);
    t.equal(res.json?.type, 'https://postbud.dev/problems/registry/provider-suspended', `${op.method} ${op.path}`);
  }
  const mailbox = await r.deps.db.kysely.selectFrom('mailboxes').select(['active', 'closed_at']).where('id', '=', created.json.id).executeTakeFirstOrThrow();
  t.same(mailbox, { active: true, closed_at: null }, 'the mailbox was not closed');
});
