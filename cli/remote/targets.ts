/**
 * What the remote-access commands are pointed at, parsed before anything is
 * sent (a bad one is a usage error, exit 2): `APP[/CONTAINER]` for exec, and
 * port-forward's `[LOCAL_ADDR:]LOCAL_PORT:[TARGET:]TARGET_PORT`, where
 * TARGET is `app` or `app/container` and no TARGET means the device's own
 * loopback (kubectl's `[LOCAL_PORT:]REMOTE_PORT`, with ssh -L's bind address).
 */
import { isIP } from 'node:net';
import { isDeviceId, isName } from '../../shared/ids.js';
import { UsageError } from '../errors.js';

export interface AppTarget {
  app: string;
  container?: string;
}

const NAME_RULE = 'lower-case letters, digits and "-", as in the app spec';

function isAppTarget(value: string): boolean {
  const parts = value.split('/');
  return parts.length <= 2 && parts.every((part) => isName(part));
}

/** `web` or `web/main`. */
export function parseAppTarget(value: string): AppTarget {
  if (!isAppTarget(value))
    throw new UsageError(`invalid APP[/CONTAINER] "${value}": expected an app name, optionally /container (${NAME_RULE})`);
  const [app, container] = value.split('/') as [string, string | undefined];
  return container === undefined ? { app } : { app, container };
}

export function checkDeviceId(value: string): string {
  if (!isDeviceId(value)) {
    throw new UsageError(`invalid device id "${value}": lower-case letters, digits, ".", "_" and "-", starting with a letter or digit`);
  }
  return value;
}

export interface ForwardSpec {
  localAddress: string;
  /** 0: the OS picks a free port. */
  localPort: number;
  /** Absent: the device's loopback (a host port). */
  target?: AppTarget;
  targetPort: number;
}

export const DEFAULT_LOCAL_ADDRESS = '127.0.0.1';
const FORWARD_USAGE = 'expected [LOCAL_ADDR:]LOCAL_PORT:[APP[/CONTAINER]:]TARGET_PORT, e.g. 8080:80, 8080:web:80 or 0.0.0.0:2222:22';

export function parseForwardSpec(value: string): ForwardSpec {
  let rest = value;
  let bracketed: string | undefined;
  // An IPv6 bind address is written in brackets: [::1]:8080:80.
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(value);
  if (v6) {
    bracketed = v6[1]!;
    rest = v6[2]!;
  }
  const parts = rest.split(':');
  if (parts.some((part) => part === '')) throw new UsageError(`invalid port-forward "${value}": ${FORWARD_USAGE}`);

  let localAddress = DEFAULT_LOCAL_ADDRESS;
  let localPort: string;
  let target: string | undefined;
  let targetPort: string;
  if (bracketed !== undefined) {
    if (parts.length !== 2 && parts.length !== 3) throw new UsageError(`invalid port-forward "${value}": ${FORWARD_USAGE}`);
    localAddress = bracketed;
    [localPort, targetPort] = [parts[0]!, parts[parts.length - 1]!];
    if (parts.length === 3) target = parts[1]!;
  } else if (parts.length === 2) {
    [localPort, targetPort] = [parts[0]!, parts[1]!];
  } else if (parts.length === 3) {
    // LOCAL_PORT:TARGET:TARGET_PORT when the first part is a port, else LOCAL_ADDR:LOCAL_PORT:TARGET_PORT.
    if (/^[0-9]+$/.test(parts[0]!)) [localPort, target, targetPort] = [parts[0]!, parts[1]!, parts[2]!];
    else [localAddress, localPort, targetPort] = [parts[0]!, parts[1]!, parts[2]!];
  } else if (parts.length === 4) {
    [localAddress, localPort, target, targetPort] = [parts[0]!, parts[1]!, parts[2]!, parts[3]!];
  } else {
    throw new UsageError(`invalid port-forward "${value}": ${FORWARD_USAGE}`);
  }

  if (localAddress !== 'localhost' && isIP(localAddress) === 0) {
    throw new UsageError(`invalid port-forward "${value}": the local address "${localAddress}" is not an IP address (or localhost)`);
  }
  const spec: ForwardSpec = {
    localAddress,
    localPort: parsePortPart(value, localPort, 'local port', 0),
    targetPort: parsePortPart(value, targetPort, 'target port', 1),
  };
  if (target !== undefined) {
    if (!isAppTarget(target)) {
      throw new UsageError(`invalid port-forward "${value}": the target "${target}" is not APP or APP/CONTAINER (${NAME_RULE})`);
    }
    spec.target = parseAppTarget(target);
  }
  return spec;
}

function parsePortPart(spec: string, value: string, what: string, min: number): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < min || Number(value) > 65535) {
    throw new UsageError(`invalid port-forward "${spec}": the ${what} "${value}" is not a port number (${min}-65535)`);
  }
  return Number(value);
}

/** `web/main:80` or `127.0.0.1:22` (the device's loopback), as the forwarding line names it. */
export function describeForwardTarget(spec: ForwardSpec): string {
  const where = spec.target ? (spec.target.container ? `${spec.target.app}/${spec.target.container}` : spec.target.app) : '127.0.0.1';
  return `${where}:${spec.targetPort}`;
}

/** `flotilla ssh-proxy DEVICE PORT`'s port. */
export function parseTargetPort(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new UsageError(`invalid port "${value}": expected a port number, 1-65535`);
  }
  return Number(value);
}
