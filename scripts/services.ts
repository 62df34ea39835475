import { service as ingestion } from '../services/ingestion/app.js';
import { service as notification } from '../services/notification/app.js';
import { service as registry } from '../services/registry/app.js';
import { service as storage } from '../services/storage/app.js';
import type { ServiceModule } from '../shared/runtime/service-module.js';

export const SERVICES: readonly ServiceModule[] = [registry, ingestion, storage, notification];
