/**
 * The values the API documents use in their examples. They are what `postbud seed` creates, so
 * every documented example can be tried against a seeded development hub (and is, by
 * tests/shared/api-examples.test.ts).
 */
export const EXAMPLE = {
  /** The first synthetic person `postbud seed` registers, with a Digipost mailbox. */
  personId: '02813000019',
  mailboxAddress: 'ola.nordmann#0000',
  /** The first sender in scripts/seed-data/senders.txt (Agder IKT driftssenter IKS). */
  senderOrgnr: '890818064',
  /** Digipost, a digital mailbox provider `postbud seed` onboards. */
  providerOrgnr: '984661185',
} as const;
