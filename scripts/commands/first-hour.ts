import path from 'node:path';
import { SCOPES } from '../../shared/auth/scopes.js';
import { syntheticPersonIdList } from '../../shared/ids/person-id.js';
import { categoryOf, seededSenders } from './seed.js';

/** The PDF the first-hour `curl` sends, shipped in the repository. */
export const EXAMPLE_PDF = path.join('docs', 'examples', 'brev.pdf');

/** The first seeded agency (`postbud seed` and the development registry `npm start` seeds). */
export const exampleSender = (): { orgnr: string; name: string } => seededSenders()[0]!;

/** The first seeded person with a mailbox: the same id on every machine (seeded ids are deterministic). */
export function examplePerson(): string {
  for (let i = 0; ; i++) if (categoryOf(i) === 'mailbox') return syntheticPersonIdList(1, i)[0]!;
}

/**
 * The commands a newcomer copies after `npm start`: a token for a seeded agency, the capabilities
 * of a seeded person, a letter with a PDF, and a citizen token for the same person. The README
 * prints them for the default ports and `npm start` for the ports it runs on; a test runs them.
 */
export function firstHourCommands(opts: { ingestionUrl: string; sender?: string; personId?: string; pdf?: string }): string[] {
  const sender = opts.sender ?? exampleSender().orgnr;
  const person = opts.personId ?? examplePerson();
  const pdf = opts.pdf ?? EXAMPLE_PDF;
  const message = `{"recipient":{"personId":"${person}"},"title":"Hello from postbud","language":"en","securityLevel":3,"documents":[{"name":"brev.pdf","mime":"application/pdf","main":true}]}`;
  return [
    `TOKEN=$(npx postbud token --org ${sender} --scope "${SCOPES.send} ${SCOPES.lookupDigitalPost}")`,
    `curl -s -H "Authorization: Bearer $TOKEN" ${opts.ingestionUrl}/v1/capabilities/${person}`,
    `curl -s -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: first-letter-$(date +%s)" \\`,
    `  --form-string 'message=${message}' \\`,
    `  -F 'document=@${pdf};type=application/pdf' ${opts.ingestionUrl}/v1/messages`,
    `npx postbud token --pid ${person} --acr idporten-loa-substantial`,
  ];
}
