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

/**
 * What a request log line says about the request: its id, method and the route it matched as a
 * template (`/v1/capabilities/:personId`), never the URL. A URL can spell a personId in ways no
 * pattern catches (`%30%31...`, a leading `%20`, an extra digit) and its query string can carry a
 * credential (`?access_token=`), so neither the path nor the query is logged. Requests that match
 * no route are logged as `(unmatched)`.
 */
export function requestForLog(req: { id?: string; method?: string; routeOptions?: { url?: string } }): { id?: string; method?: string; route: string } {
  return { id: req.id, method: req.method, route: req.routeOptions?.url ?? '(unmatched)' } as { id?: string; method?: string; route: string };
}

/** Postgres condition names for the SQLSTATEs we meet (the rest are logged by code alone). */
const PG_CONDITIONS: Record<string, string> = {
  '08000': 'connection_exception',
  '08003': 'connection_does_not_exist',
  '08006': 'connection_failure',
  '22001': 'string_data_right_truncation',
  '22003': 'numeric_value_out_of_range',
  '22007': 'invalid_datetime_format',
  '22008': 'datetime_field_overflow',
  '22021': 'character_not_in_repertoire',
  '22P02': 'invalid_text_representation',
  '22P05': 'untranslatable_character',
  '23502': 'not_null_violation',
  '23503': 'foreign_key_violation',
  '23505': 'unique_violation',
  '23514': 'check_violation',
  '23P01': 'exclusion_violation',
  '25P02': 'in_failed_sql_transaction',
  '40001': 'serialization_failure',
  '40P01': 'deadlock_detected',
  '42601': 'syntax_error',
  '42703': 'undefined_column',
  '42P01': 'undefined_table',
  '53300': 'too_many_connections',
  '57014': 'query_canceled',
  '57P01': 'admin_shutdown',
  '57P03': 'cannot_connect_now',
};

/** A Postgres error as node-postgres raises it: a SQLSTATE code and a severity. */
const isPgError = (e: Record<string, unknown>): boolean =>
  typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';

/** The stack without its first line(s), which repeat the message. */
const framesOf = (stack: unknown): string | undefined => {
  if (typeof stack !== 'string') return undefined;
  const at = stack.indexOf('\n    at ');
  return at < 0 ? undefined : stack.slice(at + 1);
};

export interface LoggedError {
  type: string;
  message: string;
  stack?: string;
  code?: string;
  statusCode?: number;
  condition?: string;
  severity?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  routine?: string;
  cause?: LoggedError;
}

/**
 * An error as it may be logged: never a value from the data. A Postgres error's `detail`
 * ("Failing row contains (...)", "Key (email)=(...)"), `where` ("JSON data, line 1: ..."),
 * `hint`, `internalQuery` and its message ('invalid input syntax for type uuid: "..."') can all
 * quote the refused value, so a Postgres error is logged as its SQLSTATE, condition name and
 * the schema objects involved (table, column, constraint, type). Other errors keep their message,
 * scrubbed of personIds and e-mail addresses and cut at 300 characters, and only the properties
 * listed here: never arbitrary enumerable fields (a driver's `parameters`, a request `body`).
 */
/** String(value), or a placeholder for an object that has no way to be one (a null prototype, a throwing toString). */
function textOf(value: object): string {
  try {
    return String(value);
  } catch {
    return '[unprintable object]';
  }
}

export function errorForLog(err: unknown, depth = 0): LoggedError {
  if (err === null || typeof err !== 'object') return { type: typeof err, message: scrubText(String(err)).slice(0, 300) };
  const e = err as Record<string, unknown>;
  // A subclass that keeps the inherited name 'Error' is still told apart by its constructor.
  const named = typeof e.name === 'string' && e.name ? e.name : undefined;
  const ctor = (err as object).constructor?.name;
  const type = named && named !== 'Error' ? named : ctor && ctor !== 'Object' ? ctor : (named ?? 'Error');
  const stack = framesOf(e.stack);
  const out: LoggedError = { type, message: '' };
  if (isPgError(e)) {
    const code = e.code as string;
    const condition = PG_CONDITIONS[code];
    out.message = `Postgres refused the statement: ${condition ?? 'error'} (SQLSTATE ${code})`;
    out.code = code;
    if (condition) out.condition = condition;
    for (const k of ['severity', 'schema', 'table', 'column', 'dataType', 'constraint', 'routine'] as const) {
      if (typeof e[k] === 'string') out[k] = e[k];
    }
  } else {
    out.message = scrubText(typeof e.message === 'string' ? e.message : textOf(err)).slice(0, 300);
    if (typeof e.code === 'string') out.code = e.code.slice(0, 64);
  }
  if (stack) out.stack = scrubText(stack);
  if (typeof e.statusCode === 'number') out.statusCode = e.statusCode;
  if (e.cause !== undefined && depth < 5) out.cause = errorForLog(e.cause, depth + 1);
  return out;
}

export function loggerOptions(service: string, level: string): LoggerOptions {
  return {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req: requestForLog,
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: errorForLog,
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
