import http from 'node:http';
import https from 'node:https';
import { PermanentSendError, TransientSendError, type OutgoingSms, type SendResult, type SmsTransport } from './types.js';

export interface SmsGatewayOptions {
  url: string;
  user?: string | undefined;
  password?: string | undefined;
  sender: string;
  timeoutMs: number;
  maxSockets: number;
}

/**
 * The HTTP SMS gateway (request and response in docs/notification.md): one JSON POST per SMS,
 * `reference` doubling as the Idempotency-Key the gateway deduplicates on. 2xx: accepted;
 * 408, 429 and 5xx, timeouts and connection errors: retried; any other 4xx: permanent.
 */
export function smsGatewayTransport(opts: SmsGatewayOptions): SmsTransport {
  const url = new URL(opts.url);
  const lib = url.protocol === 'https:' ? https : http;
  const agent = new lib.Agent({ keepAlive: true, maxSockets: opts.maxSockets });
  const auth = opts.user ? `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64')}` : undefined;

  const post = (body: string, key: string) =>
    new Promise<{ status: number; body: string; retryAfter?: string }>((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method: 'POST',
          agent,
          timeout: opts.timeoutMs,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'idempotency-key': key,
            accept: 'application/json',
            ...(auth ? { authorization: auth } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (text.length < 4096) text += d;
          });
          res.on('end', () => {
            const retryAfter = res.headers['retry-after'];
            resolve({ status: res.statusCode ?? 0, body: text, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) });
          });
          res.on('error', reject);
        },
      );
      // Once the whole request has been handed to the socket the gateway may have it: any failure
      // after that (a timeout, a reset) leaves the outcome unknown.
      let written = false;
      req.on('finish', () => (written = true));
      req.on('timeout', () => req.destroy(new TransientSendError(`SMS gateway timeout after ${opts.timeoutMs} ms`, undefined, true)));
      req.on('error', (err) => reject(err instanceof TransientSendError ? err : Object.assign(err, { written })));
      req.end(body);
    });

  return {
    kind: 'http',
    async send(sms: OutgoingSms): Promise<SendResult> {
      const body = JSON.stringify({ reference: sms.key, to: sms.to, from: opts.sender, text: sms.text });
      let res: Awaited<ReturnType<typeof post>>;
      try {
        res = await post(body, sms.key);
      } catch (err) {
        if (err instanceof TransientSendError) throw err;
        const e = err as NodeJS.ErrnoException & { written?: boolean };
        throw new TransientSendError(`SMS gateway unreachable (${e.code ?? 'error'})`, undefined, e.written === true);
      }
      if (res.status >= 200 && res.status < 300) {
        let id: unknown;
        try {
          id = (JSON.parse(res.body) as { id?: unknown }).id;
        } catch {
          /* a 2xx without a JSON body is still an acceptance */
        }
        return { ref: typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : sms.key };
      }
      if (res.status === 429) {
        const seconds = Number(res.retryAfter);
        throw new TransientSendError('SMS gateway 429', Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 3600) * 1000 : 1000);
      }
      if (res.status === 408 || res.status >= 500) throw new TransientSendError(`SMS gateway ${res.status}`);
      throw new PermanentSendError(`SMS gateway ${res.status}`);
    },
    async close() {
      agent.destroy();
    },
  };
}
