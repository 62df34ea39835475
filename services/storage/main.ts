import { runServiceMain } from '../../shared/runtime/main.js';
import { service } from './app.js';

await runServiceMain(service);
