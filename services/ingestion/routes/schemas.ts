import { Type, type Static } from 'typebox';
import { EXAMPLE } from '../../../shared/app/example-values.js';
import { ProblemSchema, errors, DateTime, Uuid, Orgnr, Language, PersonIdInput } from '../../../shared/app/schemas.js';

/** One document's bytes as a client sends them (a file part or an upload body), bounded for the linters and typegen. */
export const DocumentFile = () => Type.String({ format: 'binary', maxLength: 100 * 1024 * 1024 });

export const SecurityLevel = Type.Union([Type.Literal(3), Type.Literal(4)], { description: '3 = idporten-loa-substantial, 4 = idporten-loa-high' });

const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });

export const PrintAddress = Type.Object(
  {
    name: Text(200),
    addressLines: Type.Array(Text(200), { minItems: 1, maxItems: 4 }),
    postalCode: Text(20),
    city: Text(100),
    country: Type.Optional(Type.String({ pattern: '^[A-Z]{2}$', maxLength: 2, description: 'ISO 3166-1 alpha-2; default NO' })),
  },
  { additionalProperties: false },
);

export const PrintSchema = Type.Object(
  {
    recipient: PrintAddress,
    returnAddress: PrintAddress,
    color: Type.Union([Type.Literal('BW'), Type.Literal('COLOR')]),
    class: Type.Union([Type.Literal('A'), Type.Literal('B')]),
    returnHandling: Type.Union([Type.Literal('RETURN'), Type.Literal('SHRED')]),
  },
  { additionalProperties: false, description: 'Physical mail: the route when the recipient cannot get digital mail (fysisk post)' },
);

export const DocumentSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255, description: 'File name; the file part must carry the same filename' }),
    mime: Type.String({ minLength: 1, maxLength: 127, description: 'Declared type; must be on the allowlist and match the content' }),
    main: Type.Optional(Type.Boolean({ description: 'The main document (hoveddokument); at most one, and it comes first. Default: the first' })),
  },
  { additionalProperties: false },
);

/** The letter every document shows: to the seeded example person, with a print fallback. */
export const LETTER_EXAMPLE = {
  recipient: { personId: EXAMPLE.personId },
  title: 'Vedtak om tilskudd',
  language: 'nb',
  securityLevel: 4,
  openReceipt: true,
  notifications: { email: { text: 'Du har fått et brev fra kommunen' }, sms: { text: 'Du har fått post' }, repeatAfterDays: [0, 7] },
  print: {
    recipient: { name: 'Ola Nordmann', addressLines: ['Storgata 1'], postalCode: '0155', city: 'Oslo', country: 'NO' },
    returnAddress: { name: 'Eksempel kommune', addressLines: ['Postboks 1'], postalCode: '4601', city: 'Kristiansand' },
    color: 'BW',
    class: 'B',
    returnHandling: 'SHRED',
  },
  senderReference: 'sak-2026-0042',
  documents: [{ name: 'vedtak.pdf', mime: 'application/pdf', main: true }],
};

export const MessagePartSchema = Type.Object(
  {
    recipient: Type.Object({ personId: PersonIdInput }, { additionalProperties: false }),
    title: Type.String({ minLength: 1, maxLength: 255, description: 'Non-sensitive title, shown in alerts and lists' }),
    language: Language,
    securityLevel: SecurityLevel,
    availableAt: Type.Optional(Type.String({ format: 'date-time', maxLength: 40, description: 'Not visible or alerted before this; default now' })),
    openReceipt: Type.Optional(Type.Boolean({ description: 'Ask for an OPENED receipt (åpningskvittering)' })),
    notifications: Type.Optional(
      Type.Object(
        {
          email: Type.Optional(Type.Object({ text: Type.Optional(Text(500)) }, { additionalProperties: false })),
          sms: Type.Optional(Type.Object({ text: Type.Optional(Text(160)) }, { additionalProperties: false })),
          repeatAfterDays: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 25 }), { maxItems: 10 })),
        },
        { additionalProperties: false },
      ),
    ),
    print: Type.Optional(PrintSchema),
    senderReference: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Your reference; unique per sender' })),
    documents: Type.Array(DocumentSchema, { minItems: 1, maxItems: 1001 }),
  },
  { additionalProperties: false, title: 'LetterMessage', description: 'The JSON `message` part of POST /v1/messages' },
);
export type MessagePart = Static<typeof MessagePartSchema>;
export type PrintPart = Static<typeof PrintSchema>;

export const MessageStatus = Type.Union(
  ['ACCEPTED', 'DELIVERED', 'NOTIFIED', 'OPENED', 'PRINT_ACCEPTED', 'FAILED', 'EXPIRED', 'CANCELLED'].map((s) => Type.Literal(s)),
  { description: 'See docs/ingestion.md for the mapping onto eFormidling statuses' },
);

export const Provider = Type.Object({ orgnr: Orgnr, name: Type.Union([Type.String(), Type.Null()]) });

export const Links = Type.Object({ self: Type.String(), receipts: Type.String() });

export const SubmitResponse = Type.Object({
  id: Uuid,
  route: Type.Union([Type.Literal('DIGITAL'), Type.Literal('PRINT')]),
  provider: Provider,
  status: MessageStatus,
  senderReference: Type.Union([Type.String(), Type.Null()]),
  links: Links,
});

export { ProblemSchema, errors, DateTime, Uuid, Orgnr, Language, PersonIdInput };
