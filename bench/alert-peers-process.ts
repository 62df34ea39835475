/**
 * The SMTP server and the SMS gateway of bench/alerts.ts in their own process, as they would be
 * in reality (other machines): their parsing does not eat the notification workers' CPU. Prints
 * one JSON line with their URLs; `GET /stats` on the stats URL counts what they received.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSmsGateway, startSmtpSink } from '../tests/harness/alert-peers.js';

const smtp = await startSmtpSink();
const sms = await startSmsGateway();
const stats = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ mails: smtp.mails.length, smtpTransmissions: [...smtp.transmissions.values()].reduce((a, b) => a + b, 0), sms: sms.messages.length }));
});
await new Promise<void>((resolve) => stats.listen(0, '127.0.0.1', () => resolve()));
process.stdout.write(`${JSON.stringify({ smtp: smtp.url, sms: sms.url, stats: `http://127.0.0.1:${(stats.address() as AddressInfo).port}/stats` })}\n`);
process.on('SIGTERM', () => process.exit(0));
