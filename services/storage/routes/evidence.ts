import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { ProblemSchema } from '../../../shared/app/schemas.js';
import { keysFor } from '../../../shared/evidence/bundle.js';
import { headOfSize, hexList, latestHead, listHeads, withTree } from '../../../shared/evidence/log.js';
import { ConsistencySchema, HeadList, SignedHeadSchema } from '../../../shared/evidence/schemas.js';
import { Problem } from '../../../shared/errors/problem.js';
import { storageContext } from '../../../shared/storage/context.js';
import { storageProblems } from '../problems.js';

const TreeSize = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

/**
 * The Merkle log over all events, as anyone may check it (like /.well-known/jwks.json, no
 * token: heads hold no letter's data): the latest signed head, the history of heads, and
 * consistency proofs between two published heads.
 */
const evidence: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const db = () => deps.db.kysely;

  app.get(
    '/v1/evidence/head',
    {
      schema: {
        tags: ['evidence'],
        summary: 'The latest signed tree head of the evidence log',
        description: `A new head is signed every EVIDENCE_HEAD_SECONDS when events were added. Keep heads you fetch: with a later head and a consistency proof they show nothing was removed since.`,
        response: { 200: SignedHeadSchema, 404: ProblemSchema },
      },
    },
    async () => {
      const head = await latestHead(db());
      if (!head) throw new Problem(storageProblems.HEAD_NOT_FOUND, 'No tree head has been signed yet');
      return head;
    },
  );

  app.get(
    '/v1/evidence/heads',
    {
      schema: {
        tags: ['evidence'],
        summary: 'Every signed tree head, smallest first',
        description: 'Page with `after` = the last treeSize you have (`nextAfter` of the previous page). Public like the latest head: heads hold no letter\'s data.',
        querystring: Type.Object({ after: Type.Optional(TreeSize), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false }),
        response: { 200: HeadList, 400: ProblemSchema },
      },
    },
    async (request) => {
      const q = request.query as { after?: number; limit: number };
      const heads = await listHeads(db(), q);
      return { heads, nextAfter: heads.length === q.limit ? heads[heads.length - 1]!.treeSize : null };
    },
  );

  app.get(
    '/v1/evidence/consistency',
    {
      schema: {
        tags: ['evidence'],
        summary: 'Consistency proof between two published heads',
        description: 'RFC 9162 2.1.4: proves the head of size `second` extends the head of size `first`. Both must be published heads (see /v1/evidence/heads). Check it offline with `postbud verify --consistency FILE --head OLD`.',
        querystring: Type.Object({ first: TreeSize, second: TreeSize }, { additionalProperties: false }),
        response: { 200: ConsistencySchema, 400: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema },
      },
    },
    async (request) => {
      const q = request.query as { first: number; second: number };
      if (q.first > q.second) throw new Problem(storageProblems.INVALID_HEAD_RANGE, '`first` must not be larger than `second`');
      const [first, second] = await Promise.all([headOfSize(db(), q.first), headOfSize(db(), q.second)]);
      if (!first || !second) throw new Problem(storageProblems.HEAD_NOT_FOUND, `No published head of size ${!first ? q.first : q.second}`);
      const { complete, result } = await withTree(db(), q.second, (tree) => tree.consistencyProof(q.first, q.second));
      if (!complete) {
        request.log.error({ first: q.first, second: q.second }, 'evidence log is missing leaves or subtrees');
        throw new Problem(storageProblems.LOG_INCOMPLETE, `The log no longer holds everything the head of size ${q.second} covered: events were removed`);
      }
      return { first, second, proof: hexList(result!), keys: await keysFor(storageContext(deps).hub, [first.jws, second.jws]) };
    },
  );
};

export default evidence;
