import { randomUUID } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { EXAMPLE } from '../../../shared/app/example-values.js';
import { Problem } from '../../../shared/errors/problem.js';
import { isValidPersonId } from '../../../shared/ids/person-id.js';
import { isUuid } from '../../../shared/ids/uuid.js';
import { ownValue } from '../../../shared/runtime/own-key.js';
import { ingestionProblems } from '../problems.js';
import type { MessagePart, PrintPart } from '../routes/schemas.js';

/**
 * The next-move Standard Business Document (SBD) for DPI, and its translation into the native
 * message part of POST /v1/messages (docs/eformidling.md maps each field). Only `digital` and
 * `print` are accepted; every other next-move message type names its service in a 400.
 */

export const DPI_PROCESSES = ['urn:no:difi:profile:digitalpost:info:ver1.0', 'urn:no:difi:profile:digitalpost:vedtak:ver1.0'] as const;
export const DPI_STANDARDS = { digital: 'urn:no:difi:digitalpost:xsd:digital::digital', print: 'urn:no:difi:digitalpost:xsd:fysisk::print' } as const;
export type DpiType = keyof typeof DPI_STANDARDS;

/** Every next-move message type, with the service it belongs to (all but DPI are out of scope here). */
export const NEXTMOVE_TYPES: Readonly<Record<string, string>> = {
  digital: 'DPI',
  print: 'DPI',
  arkivmelding: 'DPO',
  arkivmelding_kvittering: 'DPO',
  avtalt: 'DPO',
  fiksio: 'DPFIO',
  digital_dpv: 'DPV',
  innsynskrav: 'DPE',
  publisering: 'DPE',
  einnsyn_kvittering: 'DPE',
  status: 'receipt',
  feil: 'receipt',
};

const Str = (maxLength: number, minLength = 0) => Type.String({ minLength, maxLength });
const strict = { additionalProperties: false } as const;

const Party = Type.Object(
  { identifier: Type.Object({ value: Str(64, 1), authority: Type.Optional(Str(64)) }, strict) },
  strict,
);

const Scope = Type.Object(
  {
    type: Str(32, 1),
    instanceIdentifier: Type.Optional(Str(255)),
    identifier: Type.Optional(Str(255)),
    scopeInformation: Type.Optional(Type.Array(Type.Object({ expectedResponseDateTime: Type.Optional(Str(40)) }, strict), { maxItems: 10 })),
  },
  strict,
);

export const SbdHeader = Type.Object(
  {
    headerVersion: Str(10, 1),
    sender: Type.Optional(Type.Array(Party, { maxItems: 1 })),
    receiver: Type.Array(Party, { minItems: 1, maxItems: 1 }),
    documentIdentification: Type.Object(
      {
        standard: Str(255, 1),
        typeVersion: Str(20, 1),
        instanceIdentifier: Type.Optional(Type.String({ maxLength: 64, description: 'The messageId; a UUID, generated when absent' })),
        type: Str(64, 1),
        creationDateAndTime: Type.Optional(Str(40)),
      },
      strict,
    ),
    businessScope: Type.Object({ scope: Type.Array(Scope, { minItems: 1, maxItems: 10 }) }, strict),
  },
  strict,
);

const Text = (max: number) => Type.String({ maxLength: max });

export const DigitalMessage = Type.Object(
  {
    sikkerhetsnivaa: Type.Union([Type.Literal(3), Type.Literal(4)], { description: '3 = idporten-loa-substantial, 4 = idporten-loa-high' }),
    hoveddokument: Str(255, 1),
    tittel: Str(255, 1),
    spraak: Str(8, 1),
    digitalPostInfo: Type.Object(
      {
        virkningsdato: Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', maxLength: 10, description: 'Not visible before this date (Europe/Oslo), YYYY-MM-DD', examples: ['2026-03-02'] }),
        aapningskvittering: Type.Boolean(),
      },
      strict,
    ),
    varsler: Type.Optional(Type.Object({ epostTekst: Type.Optional(Text(500)), smsTekst: Type.Optional(Text(160)) }, strict)),
    metadataFiler: Type.Optional(Type.Object({}, { ...strict, description: 'Not supported: must be empty' })),
  },
  strict,
);

const PostAddress = Type.Object(
  {
    navn: Str(200, 1),
    adresselinje1: Type.Optional(Text(200)),
    adresselinje2: Type.Optional(Text(200)),
    adresselinje3: Type.Optional(Text(200)),
    adresselinje4: Type.Optional(Text(200)),
    postnummer: Type.Optional(Text(20)),
    poststed: Type.Optional(Text(100)),
    land: Type.Optional(Text(100)),
  },
  strict,
);

export const PrintMessage = Type.Object(
  {
    hoveddokument: Str(255, 1),
    mottaker: PostAddress,
    utskriftsfarge: Type.Union([Type.Literal('SORT_HVIT'), Type.Literal('FARGE')]),
    posttype: Type.Union([Type.Literal('A_PRIORITERT'), Type.Literal('B_OEKONOMI')]),
    retur: Type.Object({ mottaker: PostAddress, returhaandtering: Type.Union([Type.Literal('DIREKTE_RETUR'), Type.Literal('MAKULERING_MED_MELDING')]) }, strict),
    printinstruksjoner: Type.Optional(Type.Object({}, { ...strict, description: 'Not supported: must be empty' })),
  },
  strict,
);

const OutOfScope = Type.Object({}, { additionalProperties: true, maxProperties: 50, description: 'Another service type: refused as out of scope' });

/** The documented example: next-move's own DPI digital example with the seeded sender and person. */
export const SBD_EXAMPLE = {
  standardBusinessDocumentHeader: {
    headerVersion: '1.0',
    sender: [{ identifier: { value: `0192:${EXAMPLE.senderOrgnr}`, authority: 'iso6523-actorid-upis' } }],
    receiver: [{ identifier: { value: EXAMPLE.personId, authority: 'iso6523-actorid-upis' } }],
    documentIdentification: { standard: DPI_STANDARDS.digital, typeVersion: '1.0', type: 'digital' },
    businessScope: { scope: [{ type: 'ConversationId', identifier: DPI_PROCESSES[0], scopeInformation: [{ expectedResponseDateTime: '2026-03-09T23:59:00+01:00' }] }] },
  },
  digital: {
    sikkerhetsnivaa: 3,
    hoveddokument: 'before_the_law.txt',
    tittel: 'Before the law',
    spraak: 'en',
    digitalPostInfo: { virkningsdato: '2026-03-02', aapningskvittering: false },
  },
};

export const Sbd = Type.Object(
  {
    standardBusinessDocumentHeader: SbdHeader,
    digital: Type.Optional(DigitalMessage),
    print: Type.Optional(PrintMessage),
    ...Object.fromEntries(Object.keys(NEXTMOVE_TYPES).filter((t) => t !== 'digital' && t !== 'print').map((t) => [t, Type.Optional(OutOfScope)])),
  },
  { ...strict, title: 'StandardBusinessDocument', description: 'A next-move standard business document (SBD) with a `digital` or `print` business message', examples: [SBD_EXAMPLE] },
);
export type SbdBody = Static<typeof Sbd> & { digital?: Static<typeof DigitalMessage>; print?: Static<typeof PrintMessage> };

/** One entry of next-move's constraint violations (errors[] of the error body). */
export const violationEntry = (field: string, message: string, rejectedValue: unknown, code: string) => ({
  codes: [code],
  defaultMessage: message,
  objectName: field,
  field,
  rejectedValue: rejectedValue ?? null,
  bindingFailure: false,
  code,
});

/** A field-level refusal in next-move's constraint-violation shape. */
export const violation = (field: string, message: string, rejectedValue?: unknown, code = 'NotValid') =>
  new Problem(ingestionProblems.NEXTMOVE_INVALID_SBD, `${field}: ${message}`, { errors: [violationEntry(field, message, rejectedValue, code)] });

export interface ParsedSbd {
  messageId: string;
  conversationId: string;
  process: string;
  type: DpiType;
  personId: string;
  /** The SBD as we keep and answer it: generated ids and creationDateAndTime filled in, the sender set. */
  sbd: SbdBody;
  /** The native message part without its documents (added at send, from the uploads). */
  native: (mainTitle: string) => Omit<MessagePart, 'documents'>;
  mainDocument: string;
  messageReference: string | null;
  expectedResponse: string | null;
}

const LANGUAGES: Record<string, MessagePart['language']> = { nb: 'nb', no: 'nb', nn: 'nn', en: 'en', se: 'se' };
const COUNTRIES: Record<string, string> = { norway: 'NO', norge: 'NO', noreg: 'NO', sweden: 'SE', sverige: 'SE', denmark: 'DK', danmark: 'DK' };

/** Midnight at the start of `date` in Europe/Oslo, as an ISO instant. */
export function osloStartOfDay(date: string): string {
  const utcMidnight = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(utcMidnight.getTime())) throw violation('digital.digitalPostInfo.virkningsdato', 'Must be a date (YYYY-MM-DD)', date);
  const oslo = new Date(utcMidnight.toLocaleString('en-US', { timeZone: 'Europe/Oslo' }));
  const utc = new Date(utcMidnight.toLocaleString('en-US', { timeZone: 'UTC' }));
  return new Date(utcMidnight.getTime() - (oslo.getTime() - utc.getTime())).toISOString();
}

function printAddress(a: Static<typeof PostAddress>, field: string): PrintPart['recipient'] {
  const lines = [a.adresselinje1, a.adresselinje2, a.adresselinje3, a.adresselinje4].filter((l): l is string => !!l && l.trim() !== '');
  if (lines.length === 0) throw violation(`${field}.adresselinje1`, 'Must not be empty');
  if (!a.postnummer) throw violation(`${field}.postnummer`, 'Must not be empty');
  if (!a.poststed) throw violation(`${field}.poststed`, 'Must not be empty');
  let country: string | undefined;
  if (a.land) {
    country = ownValue(COUNTRIES, a.land.trim().toLowerCase()) ?? (/^[A-Za-z]{2}$/.test(a.land.trim()) ? a.land.trim().toUpperCase() : undefined);
    if (!country) throw violation(`${field}.land`, 'Must be a country name we know (Norway, Norge, ...) or an ISO 3166 alpha-2 code', a.land);
  }
  return { name: a.navn, addressLines: lines, postalCode: a.postnummer, city: a.poststed, ...(country ? { country } : {}) };
}

/**
 * Checks an SBD the schema has passed, in next-move's terms, for the token's organisation.
 * Each refusal is a precise 400 (403 for a foreign sender) naming the field.
 */
export function parseSbd(body: SbdBody, org: string, now: Date): ParsedSbd {
  const header = body.standardBusinessDocumentHeader;
  const ident = header.documentIdentification;
  const type = ident.type;
  const service = ownValue(NEXTMOVE_TYPES, type);
  if (!service) throw violation('standardBusinessDocumentHeader.documentIdentification.type', 'Must be a NextMove message type', type, 'MessageType');
  if (service !== 'DPI') {
    throw new Problem(
      ingestionProblems.NEXTMOVE_SERVICE_NOT_SUPPORTED,
      `Service ${service} is not supported: postbud delivers digital post to persons (DPI, message types digital and print) only`,
      { serviceIdentifier: service },
    );
  }
  const dpi = type as DpiType;
  for (const other of Object.keys(NEXTMOVE_TYPES)) {
    if (other !== dpi && (body as Record<string, unknown>)[other] !== undefined) throw violation(other, `Must be absent in a ${dpi} message`);
  }
  const message = dpi === 'digital' ? body.digital : body.print;
  if (!message) throw violation(dpi, 'Must not be null');
  if (ident.standard !== DPI_STANDARDS[dpi]) throw violation('standardBusinessDocumentHeader.documentIdentification.standard', `Must be ${DPI_STANDARDS[dpi]} for type ${dpi}`, ident.standard);
  if (header.headerVersion !== '1.0') throw violation('standardBusinessDocumentHeader.headerVersion', 'Expected value is 1.0', header.headerVersion);

  const conv = header.businessScope.scope.filter((s) => s.type === 'ConversationId');
  for (const s of header.businessScope.scope) {
    if (!['ConversationId', 'SenderRef', 'ReceiverRef'].includes(s.type)) {
      throw violation('standardBusinessDocumentHeader.businessScope.scope[].type', 'Allowed values are: ConversationId, SenderRef, ReceiverRef.', s.type);
    }
  }
  if (conv.length !== 1) throw violation('standardBusinessDocumentHeader.businessScope.scope', 'Exactly one scope of type ConversationId');
  const process = conv[0]!.identifier ?? '';
  if (!(DPI_PROCESSES as readonly string[]).includes(process)) {
    throw new Problem(ingestionProblems.NEXTMOVE_UNKNOWN_PROCESS, `Unknown process ${JSON.stringify(process.slice(0, 255))} for DPI; use one of ${DPI_PROCESSES.join(', ')}`, {
      errors: [violationEntry('standardBusinessDocumentHeader.businessScope.scope[].identifier', `Must be one of ${DPI_PROCESSES.join(', ')}`, process.slice(0, 255), 'Process')],
    });
  }

  const expected = `0192:${org}`;
  const senderValue = header.sender?.[0]?.identifier.value;
  if (senderValue !== undefined && senderValue !== expected && senderValue !== org) {
    throw new Problem(ingestionProblems.NEXTMOVE_SENDER_MISMATCH, `The sender ${senderValue.slice(0, 64)} is not the organisation of the token (${expected})`);
  }
  const receiver = header.receiver[0]!.identifier.value.trim();
  if (/^(0192:)?[0-9]{9}$/.test(receiver)) {
    throw new Problem(
      ingestionProblems.NEXTMOVE_RECEIVER_NOT_PERSON,
      'The receiver is an organisation: DPI delivers to persons (a fødselsnummer or D-number without prefix); messages to organisations (DPO) are not supported',
    );
  }
  if (!/^[0-9]{11}$/.test(receiver) || !isValidPersonId(receiver)) {
    throw new Problem(ingestionProblems.INVALID_PERSON_ID, 'standardBusinessDocumentHeader.receiver[0].identifier.value is not a valid fødselsnummer or D-number');
  }

  if (ident.instanceIdentifier !== undefined && !isUuid(ident.instanceIdentifier)) {
    throw violation('standardBusinessDocumentHeader.documentIdentification.instanceIdentifier', 'Must be a UUID.', ident.instanceIdentifier, 'UUID');
  }
  if (ident.creationDateAndTime !== undefined) {
    const at = Date.parse(ident.creationDateAndTime);
    if (Number.isNaN(at)) throw violation('standardBusinessDocumentHeader.documentIdentification.creationDateAndTime', 'Must be a date-time', ident.creationDateAndTime);
    if (at > now.getTime() + 60_000) throw violation('standardBusinessDocumentHeader.documentIdentification.creationDateAndTime', 'Must be in the past', ident.creationDateAndTime, 'Past');
  }
  const expectedResponse = conv[0]!.scopeInformation?.[0]?.expectedResponseDateTime ?? null;
  if (expectedResponse !== null && Number.isNaN(Date.parse(expectedResponse))) {
    throw violation('standardBusinessDocumentHeader.businessScope.scope[].scopeInformation[].expectedResponseDateTime', 'Must be a date-time', expectedResponse);
  }
  const messageId = ident.instanceIdentifier?.toLowerCase() ?? randomUUID();
  const conversationId = conv[0]!.instanceIdentifier || randomUUID();
  const messageReference = header.businessScope.scope.find((s) => s.type === 'SenderRef')?.instanceIdentifier ?? null;

  let native: ParsedSbd['native'];
  if (dpi === 'digital') {
    const d = body.digital!;
    const language = ownValue(LANGUAGES, d.spraak.toLowerCase());
    if (!language) throw violation('digital.spraak', 'Must be one of nb, nn, en, se (or no, meaning nb)', d.spraak);
    const availableAt = osloStartOfDay(d.digitalPostInfo.virkningsdato);
    const email = d.varsler?.epostTekst?.trim();
    const sms = d.varsler?.smsTekst?.trim();
    native = () => ({
      recipient: { personId: receiver },
      title: d.tittel,
      language,
      securityLevel: d.sikkerhetsnivaa,
      availableAt,
      openReceipt: d.digitalPostInfo.aapningskvittering,
      ...(email || sms ? { notifications: { ...(email ? { email: { text: email } } : {}), ...(sms ? { sms: { text: sms } } : {}) } } : {}),
    });
  } else {
    const p = body.print!;
    const print: PrintPart = {
      recipient: printAddress(p.mottaker, 'print.mottaker'),
      returnAddress: printAddress(p.retur.mottaker, 'print.retur.mottaker'),
      color: p.utskriftsfarge === 'FARGE' ? 'COLOR' : 'BW',
      class: p.posttype === 'A_PRIORITERT' ? 'A' : 'B',
      returnHandling: p.retur.returhaandtering === 'DIREKTE_RETUR' ? 'RETURN' : 'SHRED',
    };
    native = (mainTitle) => ({ recipient: { personId: receiver }, title: mainTitle.slice(0, 255), language: 'nb', securityLevel: 4, print });
  }

  const sbd: SbdBody = {
    ...body,
    standardBusinessDocumentHeader: {
      ...header,
      sender: [{ identifier: { value: expected, authority: header.sender?.[0]?.identifier.authority ?? 'iso6523-actorid-upis' } }],
      documentIdentification: { ...ident, instanceIdentifier: messageId, creationDateAndTime: ident.creationDateAndTime ?? now.toISOString() },
      businessScope: {
        scope: header.businessScope.scope.map((s) => (s === conv[0] ? { ...s, instanceIdentifier: conversationId } : s)),
      },
    },
  };
  return { messageId, conversationId, process, type: dpi, personId: receiver, sbd, native, mainDocument: message.hoveddokument, messageReference, expectedResponse };
}
