import { ConfigError, settings, type SettingName, type TrustedIssuer } from './settings.js';

type Parsed<K extends SettingName> = ReturnType<(typeof settings)[K]['parse']>;

/** Settings with a default are always present; the others may be undefined. */
export type Config = {
  [K in SettingName]: (typeof settings)[K]['default'] extends string ? Parsed<K> : Parsed<K> | undefined;
};

export type Env = Record<string, string | undefined>;

/**
 * Reads and validates every setting at once, so a bad deployment stops at start-up with one
 * message naming each offending variable rather than failing later on first use.
 */
export function loadConfig(env: Env = process.env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, s] of Object.entries(settings)) {
    const raw = env[name];
    const value = raw === undefined || raw === '' ? s.default : raw;
    if (value === undefined) {
      out[name] = undefined;
      continue;
    }
    try {
      out[name] = s.parse(value, name);
    } catch (err) {
      problems.push(err instanceof ConfigError ? err.message : `${name}: ${String(err)}`);
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(problems.map((p) => p.split(':')[0]).join(', '), `invalid configuration\n  ${problems.join('\n  ')}`);
  }
  const config = out as Config;
  if (config.NODE_ENV === 'production' && config.AUTH_ISSUERS === undefined) {
    throw new ConfigError('AUTH_ISSUERS', 'must be set in production (the development issuer is for development only)');
  }
  return config;
}

/** Whether synthetic test identities are personIds here: SYNTHETIC_PERSON_IDS, else not in production. */
export function syntheticPersonIdsAllowed(config: Pick<Config, 'SYNTHETIC_PERSON_IDS' | 'NODE_ENV'>): boolean {
  return config.SYNTHETIC_PERSON_IDS ?? config.NODE_ENV !== 'production';
}

export type { TrustedIssuer };
export { ConfigError };
