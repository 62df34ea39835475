import net from 'node:net';

/**
 * One keep-alive HTTP/1.1 connection for a sequential client (a provider worker: list, download,
 * acknowledge, one request at a time). Requests are written by hand and answers parsed no
 * further than status, headers needed for framing and the body (Content-Length or chunked):
 * the load generator shares the 2 cores with the service, and node:http's client costs about
 * as much CPU per request as a cheap route spends answering it (see lib/open-load.ts).
 */
export interface Answer {
  status: number;
  body: Buffer;
}

export class KeepAlive {
  private socket: net.Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: { resolve(a: Answer): void; reject(e: Error): void } | undefined;
  private readonly host: string;
  private closed: Error | undefined;

  constructor(url: string) {
    const u = new URL(url);
    this.host = u.host;
    this.socket = net.connect({ host: u.hostname, port: Number(u.port), noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Sends one request and resolves with its answer; the connection stays open for the next. */
  request(method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
    if (this.closed) return Promise.reject(this.closed);
    if (this.waiting) return Promise.reject(new Error('one request at a time'));
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}\r\n`;
    for (const k in headers) head += `${k}: ${headers[k]}\r\n`;
    if (body) head += `content-length: ${body.length}\r\n`;
    head += '\r\n';
    return new Promise<Answer>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.cork();
      this.socket.write(head);
      if (body) this.socket.write(body);
      this.socket.uncork();
    });
  }

  close(): void {
    this.closed ??= new Error('closed');
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.closed ??= err;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const end = this.buffered.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buffered.subarray(0, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let body: Buffer;
    let rest: Buffer;
    if (length) {
      const n = Number(length[1]);
      if (this.buffered.length < end + 4 + n) return;
      body = this.buffered.subarray(end + 4, end + 4 + n);
      rest = this.buffered.subarray(end + 4 + n);
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const parts: Buffer[] = [];
      let at = end + 4;
      for (;;) {
        const eol = this.buffered.indexOf('\r\n', at);
        if (eol < 0) return;
        const size = parseInt(this.buffered.subarray(at, eol).toString('latin1'), 16);
        if (this.buffered.length < eol + 2 + size + 2) return;
        if (size === 0) {
          at = eol + 4;
          break;
        }
        parts.push(this.buffered.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
      rest = this.buffered.subarray(at);
    } else {
      body = Buffer.alloc(0);
      rest = this.buffered.subarray(end + 4);
    }
    this.buffered = rest;
    const w = this.waiting;
    this.waiting = undefined;
    w?.resolve({ status, body });
  }
}
