import type { OutboxTable } from './tables/outbox.js';
import type { LookupAuditTable } from './tables/lookup-audit.js';
import type { MailboxesTable } from './tables/mailboxes.js';
import type { PersonsTable } from './tables/persons.js';
import type { ProvidersTable } from './tables/providers.js';
import type { RegistryChangeCounterTable, RegistryChangesTable } from './tables/registry-changes.js';
import type { MailboxHistoryTable, ReservationHistoryTable } from './tables/registry-history.js';
import type { SendersTable } from './tables/senders.js';
import type { DeliveriesTable } from './tables/deliveries.js';
import type { HubKeysTable } from './tables/hub-keys.js';
import type { MessageEventsTable } from './tables/message-events.js';
import type { PackageChunksTable } from './tables/package-chunks.js';
import type { PackagesTable } from './tables/packages.js';
import type { ReceiptsTable } from './tables/receipts.js';
import type { EvidenceHeadsTable, EvidenceLogNodesTable, EvidenceRetiredLeavesTable, EvidenceTombstonesTable } from './tables/evidence.js';
import type { MessagesTable } from './tables/messages.js';
import type { IdempotencyKeysTable } from './tables/idempotency-keys.js';
import type { WebhookPushesTable, WebhooksTable } from './tables/webhooks.js';
import type { NotificationAttemptsTable } from './tables/notification-attempts.js';
import type { HubTransportKeysTable, MoveItemsTable, MovesTable } from './tables/moves.js';
import type { NextMoveDocumentsTable, NextMoveMessagesTable, NextMovePushesTable, NextMoveStatusesTable, NextMoveSubscriptionsTable } from './tables/nextmove.js';

/**
 * The whole schema as Kysely sees it: one entry per table, each table's type in its own file
 * under tables/. Migrations never import these types; they describe the schema at one point in
 * time, these describe it now.
 */
export interface Database {
  outbox: OutboxTable;
  persons: PersonsTable;
  providers: ProvidersTable;
  mailboxes: MailboxesTable;
  senders: SendersTable;
  reservation_history: ReservationHistoryTable;
  mailbox_history: MailboxHistoryTable;
  registry_change_counter: RegistryChangeCounterTable;
  registry_changes: RegistryChangesTable;
  lookup_audit: LookupAuditTable;
  packages: PackagesTable;
  package_chunks: PackageChunksTable;
  deliveries: DeliveriesTable;
  hub_keys: HubKeysTable;
  message_events: MessageEventsTable;
  receipts: ReceiptsTable;
  evidence_heads: EvidenceHeadsTable;
  evidence_log_nodes: EvidenceLogNodesTable;
  evidence_tombstones: EvidenceTombstonesTable;
  evidence_retired_leaves: EvidenceRetiredLeavesTable;
  messages: MessagesTable;
  idempotency_keys: IdempotencyKeysTable;
  webhooks: WebhooksTable;
  webhook_pushes: WebhookPushesTable;
  notification_attempts: NotificationAttemptsTable;
  moves: MovesTable;
  move_items: MoveItemsTable;
  hub_transport_keys: HubTransportKeysTable;
  nextmove_messages: NextMoveMessagesTable;
  nextmove_documents: NextMoveDocumentsTable;
  nextmove_statuses: NextMoveStatusesTable;
  nextmove_subscriptions: NextMoveSubscriptionsTable;
  nextmove_pushes: NextMovePushesTable;
}
