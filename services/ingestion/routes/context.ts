import type { ServiceDeps } from '../../../shared/app/deps.js';
import type { StorageContext } from '../../../shared/storage/context.js';
import type { IntakeBatches } from '../intake/batches.js';

/** What the ingestion routes share: deps, the storage context (sealer, hub keys), the intake's batches and bounds. */
export interface IngestionRouteOptions {
  deps: ServiceDeps;
  storage: StorageContext;
  intake: IntakeBatches;
}
