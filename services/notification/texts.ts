/**
 * Alert texts. The sender's own text when it gave one, else a default per language that names
 * the sender and the letter's non-sensitive title. Never a link: phishing mails carry links, so
 * an alert only tells the citizen to open their mailbox the way they usually do.
 */
export type Language = 'nb' | 'nn' | 'en' | 'se';
export const LANGUAGES: readonly Language[] = ['nb', 'nn', 'en', 'se'];

export interface AlertText {
  subject: string;
  body: string;
}

interface Defaults {
  subject: string;
  email: (sender: string, title: string) => string;
  sms: (sender: string, title: string) => string;
  invitationSubject: string;
  invitation: (sender: string) => string;
}

const DEFAULTS: Record<Language, Defaults> = {
  nb: {
    subject: 'Du har fått digital post',
    email: (s, t) => `Du har fått et brev fra ${s}: «${t}». Logg inn i den digitale postkassen din for å lese det.`,
    sms: (s, t) => `Du har fått digital post fra ${s}: «${t}». Logg inn i postkassen din for å lese.`,
    invitationSubject: 'Velg en digital postkasse',
    invitation: (s) => `${s} vil sende deg brev digitalt. Velg en digital postkasse, så får du posten fra det offentlige trygt og raskt. Du kan velge postkasse neste gang du logger inn på en offentlig tjeneste.`,
  },
  nn: {
    subject: 'Du har fått digital post',
    email: (s, t) => `Du har fått eit brev frå ${s}: «${t}». Logg inn i den digitale postkassen din for å lese det.`,
    sms: (s, t) => `Du har fått digital post frå ${s}: «${t}». Logg inn i postkassen din for å lese.`,
    invitationSubject: 'Vel ein digital postkasse',
    invitation: (s) => `${s} vil sende deg brev digitalt. Vel ein digital postkasse, så får du posten frå det offentlege trygt og raskt. Du kan velge postkasse neste gang du logger inn på en offentlig tjeneste.`,
  },
  en: {
    subject: 'You have received digital mail',
    email: (s, t) => `You have a letter from ${s}: “${t}”. Log in to your digital mailbox to read it.`,
    sms: (s, t) => `You have digital mail from ${s}: “${t}”. Log in to your mailbox to read it.`,
    invitationSubject: 'Choose a digital mailbox',
    invitation: (s) => `${s} would like to send you letters digitally. Choose a digital mailbox to get mail from the public sector safely and quickly. You can choose one the next time you log in to a public service.`,
  },
  se: {
    subject: 'Don leat ožžon digitála poastta',
    email: (s, t) => `Don leat ožžon reivve ${s} bealis: «${t}». Čálit sisa digitála poastaboksii lohkat dan.`,
    sms: (s, t) => `Don leat ožžon digitála poastta ${s} bealis: «${t}». Čálit sisa poastaboksii lohkat.`,
    invitationSubject: 'Vállje digitála poastaboksa',
    invitation: (s) => `${s} háliida sáddet dutnje reivviid digitálalaččat. Vállje digitála poastaboksa. Don sáhtát válljet poastaboksa go čálát sisa almmolaš bálvalussii.`,
  },
};

export const SMS_MAX = 160;

/** A link in any form an e-mail client or phone would make clickable. */
const LINK = /(https?:\/\/|www\.|\b[a-z0-9-]+\.(no|com|net|org|io)\b)/i;

export const hasLink = (text: string): boolean => LINK.test(text);

export function pickLanguage(...candidates: (string | null | undefined)[]): Language {
  for (const c of candidates) if (c && (LANGUAGES as readonly string[]).includes(c)) return c as Language;
  return 'nb';
}

function fitSms(make: (title: string) => string, title: string): string {
  let text = make(title);
  if (text.length <= SMS_MAX) return text;
  // Shorten the title, never the sender or the instruction.
  const over = text.length - SMS_MAX;
  const cut = Math.max(0, title.length - over - 1);
  text = make(`${title.slice(0, cut)}…`);
  return text.length <= SMS_MAX ? text : text.slice(0, SMS_MAX);
}

export function alertText(opts: {
  channel: 'email' | 'sms';
  language: Language;
  senderName: string;
  title: string;
  /** The sender's own text from the message's notifications. */
  custom?: string | undefined;
}): AlertText {
  const d = DEFAULTS[opts.language];
  // A sender text with a link is not used: the default text is.
  const custom = opts.custom?.trim();
  if (custom && !hasLink(custom)) {
    return { subject: d.subject, body: opts.channel === 'sms' ? custom.slice(0, SMS_MAX) : custom };
  }
  if (opts.channel === 'sms') return { subject: d.subject, body: fitSms((t) => d.sms(opts.senderName, t), opts.title) };
  return { subject: d.subject, body: d.email(opts.senderName, opts.title) };
}

export function invitationText(language: Language, senderName: string): AlertText {
  const d = DEFAULTS[language];
  return { subject: d.invitationSubject, body: d.invitation(senderName) };
}

/** What a move notice says: counts and the new provider; never a link, never a title. */
export interface MoveNoticeFacts {
  state: 'COMPLETED' | 'PARTIAL' | 'FAILED' | string;
  letters: number;
  moved: number;
  missing: number;
  failed: number;
  toProviderName: string | null;
}

const MOVE_NOTICE: Record<'nb' | 'nn' | 'en', { subject: string; body: (f: MoveNoticeFacts, to: string) => string }> = {
  nb: {
    subject: 'Flytting av posten din fra det offentlige',
    body: (f, to) =>
      f.state === 'COMPLETED'
        ? `Flyttingen til ${to} er ferdig: ${f.moved} av ${f.letters} brev er flyttet.${f.missing ? ` ${f.missing} brev fantes ikke lenger hos den forrige postkassen din (slettet) og kunne ikke flyttes.` : ''}`
        : `Flyttingen til ${to} ble ikke fullført: ${f.moved} av ${f.letters} brev er flyttet, ${f.failed} fikk vi ikke fra den forrige postkassen din i tide. De ligger fortsatt der, og du kan be om flytting igjen.`,
  },
  nn: {
    subject: 'Flytting av posten din frå det offentlege',
    body: (f, to) =>
      f.state === 'COMPLETED'
        ? `Flyttinga til ${to} er ferdig: ${f.moved} av ${f.letters} brev er flytta.${f.missing ? ` ${f.missing} brev fanst ikkje lenger hos den førre postkassen din (sletta) og kunne ikkje flyttast.` : ''}`
        : `Flyttinga til ${to} vart ikkje fullført: ${f.moved} av ${f.letters} brev er flytta, ${f.failed} fekk vi ikkje frå den førre postkassen din i tide. Dei ligg framleis der, og du kan be om flytting igjen.`,
  },
  en: {
    subject: 'Moving your public mail',
    body: (f, to) =>
      f.state === 'COMPLETED'
        ? `Your mail has been moved to ${to}: ${f.moved} of ${f.letters} letters.${f.missing ? ` ${f.missing} letters were no longer at your previous mailbox (deleted) and could not be moved.` : ''}`
        : `Moving your mail to ${to} did not complete: ${f.moved} of ${f.letters} letters were moved, ${f.failed} were not handed over by your previous mailbox in time. They are still there, and you may ask again.`,
  },
};

/** The e-mail telling a citizen how their move of delivered mail ended (Northern Sami: the Bokmål text). */
export function moveNoticeText(language: Language, facts: MoveNoticeFacts): AlertText {
  const t = MOVE_NOTICE[language === 'se' ? 'nb' : language];
  return { subject: t.subject, body: t.body(facts, facts.toProviderName ?? 'your new mailbox') };
}
