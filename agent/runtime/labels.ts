/**
 * Docker labels Flotilla puts on every container it creates. They are the
 * agent's only record of what it runs: after a restart of the agent, Docker or
 * the device, the agent adopts containers by these labels instead of keeping
 * a second, possibly stale, list of its own.
 */
export const LABEL_MANAGED = 'flotilla.managed';
export const LABEL_APP = 'flotilla.app';
export const LABEL_CONTAINER = 'flotilla.container';
export const LABEL_APP_REVISION = 'flotilla.app-revision';
export const LABEL_SPEC_HASH = 'flotilla.spec-hash';
export const LABEL_DEVICE = 'flotilla.device';

/** Docker container name for one container of one app; unambiguous because names never contain `_`. */
export function containerName(app: string, container: string): string {
  return `${app}_${container}`;
}
