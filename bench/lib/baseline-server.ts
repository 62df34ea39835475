/** The baseline server (bench/baseline.ts) as its own process, so the load generator does not share its event loop: prints its URL. */
import { startBaseline } from '../baseline.js';

const server = await startBaseline(process.env.DATABASE_URL!);
process.stdout.write(`${server.url}\n`);
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
