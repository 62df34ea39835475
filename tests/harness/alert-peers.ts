/**
 * The outside peers of the notification service as real protocol servers: an SMTP server (the
 * smtp-server package) and an HTTP SMS gateway (node:http) that speaks the contract in
 * docs/notification.md. Tests, the crash test and the bench all use them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedMail {
  messageId: string;
  alertKey: string;
  to: string;
  subject: string;
  text: string;
}

export interface SmtpSink {
  url: string;
  port: number;
  /** What a mail store suppressing duplicates by Message-ID (as Cyrus, Exchange and Gmail do) delivers. */
  mails: ReceivedMail[];
  /** Raw transmissions per Message-ID (a resend of the same alert counts here, not as a new mail). */
  transmissions: Map<string, number>;
  close(): Promise<void>;
}

const decodeWords = (s: string): string =>
  s.replace(/=\?UTF-8\?([QB])\?([^?]*)\?=\s*/gi, (_m, enc: string, data: string) =>
    enc.toUpperCase() === 'B'
      ? Buffer.from(data, 'base64').toString('utf8')
      : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'),
  );

const decodeQp = (s: string): string =>
  Buffer.from(s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');

export function parseMail(raw: string, to: string): ReceivedMail {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  let body = raw.slice(split + 4);
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
  const cte = header('Content-Transfer-Encoding').toLowerCase();
  if (cte === 'quoted-printable') body = decodeQp(body);
  else if (cte === 'base64') body = Buffer.from(body, 'base64').toString('utf8');
  return { messageId: header('Message-ID'), alertKey: header('X-Postbud-Alert'), to, subject: decodeWords(header('Subject')), text: body.replace(/\r?\n$/, '') };
}

/**
 * An SMTP server keeping what it accepts. Recipients starting `reject` get 550, `tempfail` 451
 * (the first `tempfailTimes` tries of each message), like a real MTA would answer.
 */
export async function startSmtpSink(
  opts: {
    port?: number;
    tempfailTimes?: number;
    auth?: { user: string; pass: string };
    tls?: boolean;
    /** A control point: the server answers the final dot of a transmission only once this settles. */
    hold?: (mail: ReceivedMail, transmission: number) => Promise<void> | undefined;
  } = {},
): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const transmissions = new Map<string, number>();
  const tempfails = new Map<string, number>();
  const options: SMTPServerOptions = {
    authOptional: !opts.auth,
    disabledCommands: opts.tls ? [] : ['STARTTLS'],
    logger: false,
    size: 1024 * 1024,
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
      return cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, cb) {
      const to = address.address;
      if (to.startsWith('reject')) return cb(Object.assign(new Error('No such user'), { responseCode: 550 }));
      if (to.startsWith('tempfail')) {
        const n = (tempfails.get(to) ?? 0) + 1;
        tempfails.set(to, n);
        if (n <= (opts.tempfailTimes ?? 1)) return cb(Object.assign(new Error('Try again later'), { responseCode: 451 }));
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const mail = parseMail(Buffer.concat(chunks).toString('utf8'), session.envelope.rcptTo[0]?.address ?? '');
        const seen = transmissions.get(mail.messageId) ?? 0;
        transmissions.set(mail.messageId, seen + 1);
        if (seen === 0) mails.push(mail);
        const held = opts.hold?.(mail, seen + 1);
        if (held) void held.then(() => cb(), () => cb());
        else cb();
      });
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    mails,
    transmissions,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface ReceivedSms {
  reference: string;
  to: string;
  from: string;
  text: string;
}

export interface SmsGateway {
  url: string;
  messages: ReceivedSms[];
  /** Requests per reference, resends included. */
  requests: Map<string, number>;
  /** Authorization headers seen. */
  authorizations: Set<string>;
  close(): Promise<void>;
}

/**
 * The SMS gateway contract: POST JSON {reference, to, from, text}; 202 {id} when accepted, the
 * same answer again (nothing resent) for a reference it already has. Numbers ending 400 get 400,
 * ending 503 get 503 for the first `failTimes` tries, ending 429 get 429 once, ending 999 hang.
 */
export async function startSmsGateway(
  opts: {
    port?: number;
    failTimes?: number;
    auth?: string;
    /** A control point: a request is answered only once this settles (the request counts as received already). */
    hold?: (sms: ReceivedSms, request: number) => Promise<void> | undefined;
  } = {},
): Promise<SmsGateway> {
  const messages: ReceivedSms[] = [];
  const requests = new Map<string, number>();
  const authorizations = new Set<string>();
  const accepted = new Map<string, string>();
  const fails = new Map<string, number>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      if (req.headers.authorization) authorizations.add(req.headers.authorization);
      if (opts.auth && req.headers.authorization !== opts.auth) return answer(401, { error: 'unauthorized' });
      let sms: ReceivedSms;
      try {
        sms = JSON.parse(body) as ReceivedSms;
      } catch {
        return answer(400, { error: 'bad json' });
      }
      if (!sms.reference || !sms.to || !sms.text) return answer(400, { error: 'reference, to and text are required' });
      const request = (requests.get(sms.reference) ?? 0) + 1;
      requests.set(sms.reference, request);
      const held = opts.hold?.(sms, request);
      if (held) void held.then(() => decide(sms), () => decide(sms));
      else decide(sms);
    });
    const answer = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(json));
    };
    const decide = (sms: ReceivedSms) => {
      const known = accepted.get(sms.reference);
      if (known) return answer(202, { id: known, duplicate: true });
      if (sms.to.endsWith('400')) return answer(400, { error: 'invalid number' });
      if (sms.to.endsWith('999')) return; // never answers: the client's timeout decides
      const failed = fails.get(sms.reference) ?? 0;
      if (sms.to.endsWith('503') && failed < (opts.failTimes ?? 1)) {
        fails.set(sms.reference, failed + 1);
        return answer(503, { error: 'busy' });
      }
      if (sms.to.endsWith('429') && failed < 1) {
        fails.set(sms.reference, failed + 1);
        return answer(429, { error: 'slow down' }, { 'retry-after': '1' });
      }
      const id = `gw-${accepted.size + 1}`;
      accepted.set(sms.reference, id);
      messages.push(sms);
      answer(202, { id });
    };
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/sms`,
    messages,
    requests,
    authorizations,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
