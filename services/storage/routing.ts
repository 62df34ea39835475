import type { PrintInstructions } from '../../shared/crypto/asice.js';
import type { HubKeys } from '../../shared/crypto/hub-keys.js';
import type { DeliveryRoute } from '../../shared/db/tables/deliveries.js';

export const ROUTING_TYP = 'postbud-routing+jws';

/**
 * Where one delivery goes, signed by the hub at each listing. The package's signed manifest
 * describes the letter only; its route can change after sealing (re-addressing, the print
 * fallback) while the ciphertext is never re-encrypted, so the route is attested here, per
 * delivery and always current, and bound to the package by the manifest's SHA-256.
 */
export interface RoutingStatement {
  deliveryId: string;
  messageId: string;
  /** SHA-256 (hex) of the exact manifest.json bytes inside the package. */
  manifestSha256: string | null;
  route: DeliveryRoute;
  providerOrgnr: string;
  /** The recipient's mailbox at this provider; null for print. */
  mailboxAddress: string | null;
  /** Print deliveries only. */
  print?: PrintInstructions;
  iat: number;
}

/** A compact JWS (ES256, `typ: postbud-routing+jws`), verifiable with the hub JWKS. */
export async function signRouting(hub: HubKeys, r: Omit<RoutingStatement, 'iat'>, now = new Date()): Promise<string> {
  const statement: RoutingStatement = {
    deliveryId: r.deliveryId,
    messageId: r.messageId,
    manifestSha256: r.manifestSha256,
    route: r.route,
    providerOrgnr: r.providerOrgnr,
    mailboxAddress: r.route === 'DIGITAL' ? r.mailboxAddress : null,
    ...(r.route === 'PRINT' && r.print ? { print: r.print } : {}),
    iat: Math.floor(now.getTime() / 1000),
  };
  return hub.sign(Buffer.from(JSON.stringify(statement)), { typ: ROUTING_TYP });
}
