/** hub.version: what the hub is, for `flotilla version` and for checking a fleet before an upgrade. */
import { PROTOCOL_VERSIONS } from '../../shared/protocol-version.js';
import { flotillaVersion } from '../../shared/version.js';
import type { ApiHandlersFor } from './method.js';

export type HubMethodName = 'hub.version';

export interface HubMethodDeps {
  /** The protocol versions the hub's broker admits (default PROTOCOL_VERSIONS). */
  protocolVersions?: readonly number[] | undefined;
}

export function hubMethods(deps: HubMethodDeps): ApiHandlersFor<HubMethodName> {
  const protocolVersions = [...(deps.protocolVersions ?? PROTOCOL_VERSIONS)];
  return {
    'hub.version': () => ({ version: flotillaVersion(), protocolVersions }),
  };
}
