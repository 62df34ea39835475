import { letter } from '../../tests/services/ingestion/fixtures.js';
import { BODY_10KB } from '../baseline.js';

/** The multipart request every intake bench sends: one letter, one 10 KB PDF (ASCII only: autocannon's id replacement rewrites the request as text). */
export const BOUNDARY = '----postbud-bench';
export const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
export const PDF_10KB = Buffer.concat([Buffer.from('%PDF-1.7\n'), BODY_10KB.subarray(9)]);
export const letterHead = (): Buffer =>
  Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${JSON.stringify(letter())}\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="document"; filename="vedtak.pdf"\r\nContent-Type: application/pdf\r\n\r\n`,
  );
export const LETTER_TAIL = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
export const LETTER_10KB = Buffer.concat([letterHead(), PDF_10KB, LETTER_TAIL]);
