import { sql } from 'kysely';
import t from 'tap';
import { createApp } from '../../shared/app/create-app.js';
import { createLogger, errorForLog } from '../../shared/logging/logger.js';
import { testDeps } from '../helpers/service.js';
import { captureLog } from '../helpers/log-capture.js';

/** Values Postgres quotes back in its errors (message, detail, where) when it refuses them. */
const NAME = 'Kari Nordmann-Hemmelig';
const EMAIL = 'kari.hemmelig@example.no';
const ORG_NAME = 'Hemmelig Etat AS';
const PHONE = '4790012345';
const SECRETS = /Hemmelig|hemmelig|Nordmann|974760673|4790012345/;

const capture = captureLog;

t.test('an error Postgres raised over a refused value is logged without the value', async (t) => {
  const { lines, stream } = capture();
  const deps = await testDeps(t);
  const app = await createApp({ name: 'registry', description: 'test' }, { ...deps, logger: createLogger('registry', 'info', stream) });
  const db = deps.db.kysely;
  t.teardown(() => app.close());
  // Each statement makes Postgres quote the refused value somewhere in the error it raises.
  const refusals: Record<string, () => Promise<unknown>> = {
    // 22P05, where: "JSON data, line 1: {"name":"Kari..."
    jsonb: () => sql`select ${JSON.stringify({ name: `${NAME}\u0000`, email: EMAIL })}::jsonb`.execute(db),
    // 22P02, message: invalid input syntax for type uuid: "kari.hemmelig@example.no"
    uuid: () => sql`select ${EMAIL}::uuid`.execute(db),
    // 23505, detail: Key (orgnr)=(...) already exists; 23514 / 23502, detail: Failing row contains (..., Hemmelig Etat AS, ...)
    unique: async () => {
      await db.insertInto('senders').values({ orgnr: '974760673', name: ORG_NAME }).execute();
      await db.insertInto('senders').values({ orgnr: '974760673', name: ORG_NAME }).execute();
    },
    check: () => db.insertInto('senders').values({ orgnr: 'x', name: ORG_NAME }).execute(),
    notNull: () => sql`insert into senders (orgnr, name, status) values ('889640782', ${ORG_NAME}, null)`.execute(db),
    // 22003, message: value "4790012345" is out of range for type integer (a phone number)
    range: () => sql`select ${PHONE}::int`.execute(db),
  };
  const seen: Record<string, unknown> = {};
  for (const [name, run] of Object.entries(refusals)) {
    app.get(`/fail/${name}`, async () => {
      try {
        await run();
      } catch (err) {
        seen[name] = err;
        throw err;
      }
      return 'not refused';
    });
  }
  for (const name of Object.keys(refusals)) {
    const res = await app.inject({ method: 'GET', url: `/fail/${name}` });
    t.equal(res.statusCode, 500, `${name}: the request fails`);
    t.notMatch(res.body, SECRETS, `${name}: the answer carries no value`);
  }
  for (const [name, err] of Object.entries(seen)) {
    const e = err as { code?: string; detail?: string; where?: string; message: string };
    t.match(e.code, /^[0-9A-Z]{5}$/, `${name}: a real Postgres error (${e.code})`);
    t.ok(SECRETS.test(`${e.message} ${e.detail ?? ''} ${e.where ?? ''}`), `${name}: Postgres itself quoted the value`);
  }
  const log = lines.join('');
  t.notMatch(log, SECRETS, 'no value of the refused rows reaches the log');
  t.notMatch(log, /Failing row|Key \(/, 'no value of the refused rows reaches the log');
  const failures = lines.map((l) => JSON.parse(l) as { msg: string; err?: { code?: string; condition?: string; table?: string; constraint?: string } }).filter((l) => l.msg === 'request failed');
  t.equal(failures.length, Object.keys(refusals).length, 'each failure is logged');
  t.ok(failures.some((f) => f.err?.condition === 'unique_violation' && f.err.table === 'senders' && f.err.constraint === 'senders_pkey'), 'with what an operator needs: SQLSTATE, condition, table, constraint');
});

t.test('errors keep only listed properties, scrubbed, and their causes likewise', async (t) => {
  const inner = Object.assign(new Error('lookup of 01017012345 failed'), { parameters: [EMAIL], body: { title: 'x' } });
  const outer = new Error(`wrapping for ${EMAIL}`, { cause: inner });
  const logged = JSON.stringify(errorForLog(outer));
  t.notMatch(logged, /01017012345|kari\.hemmelig|parameters|"body"/);
  t.match(logged, /\[personId\]/);
  t.same(errorForLog('plain').type, 'string');
});

t.test("an error's type is its own name, else its class, so a subclass that keeps the name 'Error' is still told apart", async (t) => {
  class SweepFault extends Error {}
  class NamedFault extends Error {
    override name = 'NamedFault';
  }
  t.equal(errorForLog(new SweepFault('x')).type, 'SweepFault', 'the inherited name Error gives way to the class');
  t.equal(errorForLog(new NamedFault('x')).type, 'NamedFault');
  t.equal(errorForLog(new TypeError('x')).type, 'TypeError');
  t.equal(errorForLog(new Error('x')).type, 'Error');
  t.equal(errorForLog({ message: 'a plain object' }).type, 'Error', 'a plain object thrown is an Error, not "Object"');
  const bare = errorForLog(Object.assign(Object.create(null) as object, { name: 'Bare' }));
  t.match(bare, { type: 'Bare', message: '[unprintable object]' }, 'a thrown object with no prototype is logged, not a second throw');
  t.match(errorForLog({ toString: () => { throw new Error('no'); } }), { message: '[unprintable object]' });
});
