import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Field names that carry personal data or letter content anywhere in a log object. pino's redact
 * paths match exact paths, so each name is listed at the depths we log objects at.
 */
const SENSITIVE_FIELDS = [
  'personId',
  'personIds',
  'pid',
  'email',
  'mobile',
  'phone',
  'title',
  'document',
  'documents',
  'content',
  'body',
  'text',
  'address',
  'authorization',
  'personidentifikator',
  'personidentifikatorer',
  'epostadresse',
  'mobiltelefonnummer',
];

export const REDACT_PATHS = SENSITIVE_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`, `*.*.*.${f}`]);

/** 11 digits in a row: a fødselsnummer or D-number, wherever it appears in free text or a URL. */
const PERSON_ID_IN_TEXT = /(?<!\d)\d{11}(?!\d)/g;
const EMAIL_IN_TEXT = /[^\s@/]+@[^\s@/]+\.[^\s@/]+/g;

export function scrubText(text: string): string {
  return text.replace(PERSON_ID_IN_TEXT, '[personId]').replace(EMAIL_IN_TEXT, '[email]');
}

export function loggerOptions(service: string, level: string): LoggerOptions {
  return {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      // Paths such as /v1/capabilities/{personId} carry personal data in the URL itself.
      req: (req: { id?: string; method?: string; url?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url === undefined ? undefined : scrubText(req.url),
      }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.err,
    },
    hooks: {
      // A last line of defence for messages built from strings.
      logMethod(args, method) {
        const scrubbed = args.map((a: unknown) => (typeof a === 'string' ? scrubText(a) : a));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
  };
}

export function createLogger(service: string, level = 'info', destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(service, level), destination) : pino(loggerOptions(service, level));
}

export type { Logger };
