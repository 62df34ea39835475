import { Type } from 'typebox';
import type { CapabilitiesView as NativeCapabilities } from '../capabilities.js';
import { DPI_PROCESSES, DPI_STANDARDS } from './sbd.js';

/**
 * GET /api/capabilities/{personId} in next-move's shape, from the native capabilities
 * (capabilitiesFor: the same routing as a letter, audited as `eformidling-capabilities`): DPI with document type `digital` when the person can get digital post,
 * else DPI `print` when a print provider is active, else no capability. One entry per DPI
 * process (info, vedtak), narrowed by `process`; `securityLevel` 3 or 4 narrows digital to the
 * levels the mailbox supports. postbud holds no postal addresses (the registry has no
 * folkeregister addresses), so postAddress and returnAddress are null and a print message must
 * carry its own `mottaker`.
 */

const Address = Type.Union([
  Type.Object({ name: Type.String(), street: Type.String(), postalCode: Type.String(), postalArea: Type.String(), country: Type.String() }),
  Type.Null(),
]);

export const CapabilitiesView = Type.Object({
  capabilities: Type.Array(
    Type.Object({
      process: Type.String(),
      serviceIdentifier: Type.Literal('DPI'),
      postAddress: Address,
      returnAddress: Address,
      documentTypes: Type.Array(Type.Object({ type: Type.String(), standard: Type.String() })),
    }),
  ),
});

export function nextMoveCapabilities(caps: NativeCapabilities, q: { securityLevel?: number; process?: string }) {
  const digital = caps.digital.possible && (q.securityLevel === undefined || q.securityLevel < 3 || caps.digital.securityLevels.includes(q.securityLevel));
  const type = digital ? 'digital' : caps.print.possible ? 'print' : undefined;
  if (!type) return { capabilities: [] };
  return {
    capabilities: DPI_PROCESSES.filter((p) => q.process === undefined || q.process === p).map((process) => ({
      process,
      serviceIdentifier: 'DPI' as const,
      postAddress: null,
      returnAddress: null,
      documentTypes: [{ type, standard: DPI_STANDARDS[type] }],
    })),
  };
}
