/** The notification workers' group commit is the shared one (shared/batch/group.ts). */
export { Group } from '../../shared/batch/group.js';
