import { loadConfig, ConfigError } from '../config/config.js';
import { closeOnSignals, startService } from './run-service.js';
import type { ServiceModule } from './service-module.js';

/** Entry point of `node dist/services/<name>/main.js`. */
export async function runServiceMain(mod: ServiceModule): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`postbud ${mod.name}: ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const running = await startService(mod, config);
  running.app.log.info({ url: running.url }, `${mod.name} listening`);
  closeOnSignals(config, running.app.log, [() => running.stop()]);
}
