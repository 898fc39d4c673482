/**
 * Names that end up in MQTT topics, Docker container names and SQLite keys.
 *
 * Device ids never contain `+`, `#` or `/`, so a device can never subscribe
 * to, or publish on, another device's topics by choosing its own id
 * [MQTT-4.7.1-1]. App and container names are DNS labels (as in Kubernetes and
 * Compose) and never contain `_`, which Flotilla uses to join them into Docker
 * container names (`{app}_{container}`).
 */
export const DEVICE_ID_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';
export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
/** Label keys follow Kubernetes' shape (optional prefix/name); values are short and plain. */
export const LABEL_KEY_PATTERN = '^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$';
export const LABEL_VALUE_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$';
/** Where an applied set of specs came from (`git:<sha>`): printable ASCII without spaces, at most MAX_SOURCE_LENGTH. */
export const SOURCE_PATTERN = '^[\\x21-\\x7e]+$';
export const MAX_SOURCE_LENGTH = 256;

const deviceIdRe = new RegExp(DEVICE_ID_PATTERN);
const nameRe = new RegExp(NAME_PATTERN);

export function isDeviceId(value: string): boolean {
  return deviceIdRe.test(value);
}

export function isName(value: string): boolean {
  return nameRe.test(value);
}
