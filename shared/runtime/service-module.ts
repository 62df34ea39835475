import type { App, ServiceInfo } from '../app/create-app.js';
import type { ServiceDeps } from '../app/deps.js';

export type ServiceName = ServiceInfo['name'];

export interface Background {
  stop(): Promise<void>;
}

/** What each services/<name>/ exports for main.ts, `npm start` and the OpenAPI writer. */
export interface ServiceModule {
  name: ServiceName;
  buildApp(deps: ServiceDeps): Promise<App>;
  /** Workers and loops the service runs beside its HTTP API (not started for OpenAPI or inject tests). */
  startBackground?(deps: ServiceDeps): Promise<Background>;
}
