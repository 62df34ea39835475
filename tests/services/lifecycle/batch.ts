import { randomBytes } from 'node:crypto';

export interface BatchLetter {
  idempotencyKey: string;
  message: unknown;
  documents: { name: string; content: Buffer }[];
}

/** A POST /v1/messages/batch body: per letter a `letter` field part, then its document file parts. */
export function batchBody(letters: BatchLetter[], opts: { leadingFile?: boolean; rawLetter?: string } = {}) {
  const boundary = `----postbud${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  const file = (name: string, content: Buffer) => {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="document"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), content, Buffer.from('\r\n'));
  };
  if (opts.leadingFile) file('stray.pdf', Buffer.from('%PDF-1.7\n'));
  for (const l of letters) {
    const json = opts.rawLetter ?? JSON.stringify({ idempotencyKey: l.idempotencyKey, message: l.message });
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="letter"\r\n\r\n${json}\r\n`));
    for (const d of l.documents) file(d.name, d.content);
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
