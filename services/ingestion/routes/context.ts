import type { ServiceDeps } from '../../../shared/app/deps.js';
import type { StorageContext } from '../../../shared/storage/context.js';
import type { InFlightLocks } from '../idempotency.js';

/** What the ingestion routes share: deps, the storage context (sealer, hub keys), the in-flight locks. */
export interface IngestionRouteOptions {
  deps: ServiceDeps;
  storage: StorageContext;
  locks: InFlightLocks;
}
