import { Type } from 'typebox';
import { DateTime, Uuid } from '../app/schemas.js';
import { BUNDLE_FORMAT } from './bundle.js';
import { LOG_ID } from './log.js';

/** OpenAPI schemas of the evidence documents (docs/evidence.md). */

const Hex32 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256, lowercase hex' });

export const SignedHeadSchema = Type.Object(
  {
    log: Type.Literal(LOG_ID),
    treeSize: Type.Integer({ minimum: 0, description: 'Leaves (events) in the tree' }),
    rootHash: Hex32,
    timestamp: DateTime,
    jws: Type.String({ description: 'Compact JWS (ES256, typ postbud-tree-head+jws) over {log, treeSize, rootHash, timestamp}' }),
  },
  { description: 'A signed tree head of the Merkle log over all events (RFC 9162 hashing)' },
);

export const KeysSchema = Type.Object(
  { keys: Type.Array(Type.Object({ kid: Type.String(), kty: Type.String() }, { additionalProperties: true })) },
  { description: 'The public hub keys of the signatures in this document (the same as in /.well-known/jwks.json)' },
);

export const HeadList = Type.Object({
  heads: Type.Array(SignedHeadSchema),
  nextAfter: Type.Union([Type.Integer(), Type.Null()], { description: 'Pass as `after` for the next page; null at the end' }),
});

export const ConsistencySchema = Type.Object(
  {
    first: SignedHeadSchema,
    second: SignedHeadSchema,
    proof: Type.Array(Hex32, { description: 'RFC 9162 2.1.4 consistency proof from first to second' }),
    keys: KeysSchema,
  },
  { description: 'Proof that the second head extends the first: nothing in the first tree was removed or rewritten' },
);

export const BundleSchema = Type.Object(
  {
    format: Type.Literal(BUNDLE_FORMAT),
    messageId: Uuid,
    sender: Type.String(),
    generatedAt: DateTime,
    manifestSha256: Type.Union([Hex32, Type.Null()], { description: 'SHA-256 of the sealed manifest.json (from the SEALED event)' }),
    documents: Type.Array(Type.Object({ sha256: Hex32, size: Type.Integer() }), { description: 'Each document as sealed, in order (from the SEALED event)' }),
    events: Type.Array(
      Type.Object({
        seq: Type.Integer({ minimum: 1 }),
        redacted: Type.Boolean({ description: 'true for an event the sender may not see (an OPENED without openReceipt): its type, at and data are null; its hash, prevHash and inclusion proof still link the chain and the log' }),
        type: Type.Union([Type.String(), Type.Null()], { description: 'null when redacted' }),
        at: Type.Union([DateTime, Type.Null()], { description: 'null when redacted' }),
        data: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], { description: 'null when redacted' }),
        prevHash: Type.Union([Hex32, Type.Null()]),
        hash: Hex32,
        leafIndex: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'Its leaf in the log; null until the sequencer takes it' }),
        inclusionProof: Type.Union([Type.Array(Hex32), Type.Null()], { description: 'Audit path against `head`; null when the head does not cover the event yet' }),
      }),
    ),
    receipts: Type.Array(Type.Object({ id: Uuid, type: Type.String(), jws: Type.String() })),
    head: Type.Union([SignedHeadSchema, Type.Null()]),
    statement: Type.String({ description: 'Compact JWS (typ postbud-evidence+jws) over {messageId, sender, generatedAt, events [{seq, type, hash} or, redacted, {seq, type: null, hash, redacted: true}], receipts [id], head {treeSize, rootHash}}' }),
    keys: KeysSchema,
  },
  { description: 'Everything needed to verify a letter\'s evidence offline (docs/evidence.md)' },
);
