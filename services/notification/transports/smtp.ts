import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { PermanentSendError, TransientSendError, type EmailTransport, type OutgoingEmail, type SendResult } from './types.js';

export interface SmtpOptions {
  url: string;
  user?: string | undefined;
  password?: string | undefined;
  requireTls: boolean;
  rejectUnauthorized: boolean;
  poolSize: number;
  from: string;
}

/** The Message-ID of an alert: the same on every retry, so a receiver can recognise a resend. */
export const messageIdFor = (key: string): string => `<${key}@alerts.postbud>`;

/** Pooled SMTP through nodemailer. 5xx answers are permanent; 4xx and connection trouble are retried. */
export function smtpTransport(opts: SmtpOptions): EmailTransport {
  const url = new URL(opts.url);
  const secure = url.protocol === 'smtps:';
  const user = opts.user ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const pass = opts.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  const config: SMTPPool.Options = {
    pool: true,
    host: url.hostname,
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    requireTLS: !secure && opts.requireTls,
    ignoreTLS: !secure && !opts.requireTls,
    tls: { rejectUnauthorized: opts.rejectUnauthorized },
    maxConnections: opts.poolSize,
    maxMessages: Infinity,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    ...(user ? { auth: { user, pass: pass ?? '' } } : {}),
  };
  const transporter = nodemailer.createTransport(config);
  return {
    kind: 'smtp',
    async send(mail: OutgoingEmail): Promise<SendResult> {
      const messageId = messageIdFor(mail.key);
      try {
        await transporter.sendMail({
          from: opts.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          messageId,
          headers: { 'X-Postbud-Alert': mail.key, 'Auto-Submitted': 'auto-generated' },
        });
      } catch (err) {
        throw classifySmtpError(err);
      }
      return { ref: messageId };
    },
    async close() {
      transporter.close();
    },
  };
}

/** Failures that happen before a session exists: nothing of the message can have left. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const SETUP_TIMEOUTS = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT']);

/**
 * Did the message perhaps reach the server although the send failed? A server answer (any reply
 * code) says no; a failure to connect says no; anything else (a socket timeout, a connection lost
 * mid-session, possibly after the final dot) cannot tell, so the retry is flagged ambiguous.
 * nodemailer reports every lost connection with command CONN, so the stage cannot be told apart.
 */
function outcomeUnknown(e: { responseCode?: number; code?: string; originalCode?: string; timeoutType?: string }): boolean {
  if (typeof e.responseCode === 'number') return false;
  if (e.code === 'EAUTH' || e.code === 'ETLS' || e.code === 'EREQUIRETLS' || e.code === 'EENVELOPE') return false;
  if (e.originalCode && NEVER_CONNECTED.has(e.originalCode)) return false;
  if (e.timeoutType && SETUP_TIMEOUTS.has(e.timeoutType)) return false;
  return true;
}

export function classifySmtpError(err: unknown): Error {
  const e = err as { responseCode?: number; code?: string; originalCode?: string; timeoutType?: string; message?: string };
  const what = `SMTP ${e.responseCode ?? e.code ?? 'error'}`;
  if (typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600) return new PermanentSendError(`${what}: rejected`);
  // A message nodemailer cannot even address (no valid recipient) will never go out.
  if (e.code === 'EENVELOPE' && e.responseCode === undefined) return new PermanentSendError(`${what}: invalid recipient`);
  return new TransientSendError(what, undefined, outcomeUnknown(e));
}
