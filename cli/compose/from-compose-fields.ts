/**
 * One Compose service field at a time → the app spec's field: the short and
 * long forms people write (ports, volumes, healthcheck, restart, sizes,
 * durations). Pure: every function takes the value, its path for messages
 * (`services.web.ports[1]`) and the list to push problems to, and returns the
 * spec's value, or undefined when it pushed a problem. from-compose.ts walks
 * the document and calls them.
 */

import type { ContainerSpec } from '../../shared/schemas/spec.js';
import { DURATION_PATTERN, SIZE_PATTERN } from '../../shared/schemas/units.js';
import { shellWords } from './shell-words.js';

type Healthcheck = NonNullable<ContainerSpec['healthcheck']>;
type RestartPolicy = NonNullable<ContainerSpec['restartPolicy']>;

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** A scalar as Compose reads it into a string: `8080`, `true`, `1.5` keep their text; null is empty. */
export function scalarText(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}

/** `command:` / `entrypoint:`: a list as it is, a string split into shell words. */
export function words(value: unknown, at: string, problems: string[]): string[] | undefined {
  if (Array.isArray(value)) return value.map(scalarText);
  try {
    return shellWords(scalarText(value));
  } catch (err) {
    problems.push(`${at}: ${(err as Error).message}`);
    return undefined;
  }
}

/** `["A=1", "B"]` or `{A: 1, B: null}` → entries; a value of undefined is a name given alone. */
export function assignments(value: unknown): [string, string | undefined][] {
  if (Array.isArray(value)) {
    return value.map((item) => {
      const text = scalarText(item);
      const at = text.indexOf('=');
      return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
    });
  }
  if (isRecord(value)) return Object.entries(value).map(([key, item]) => [key, item === null ? undefined : scalarText(item)]);
  return [];
}

const IPV4 = '((25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})\\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})';
const SHORT_PORT = new RegExp(`^(?:(?:(${IPV4}):)?([0-9]{1,5}):)?([0-9]{1,5})(?:/(tcp|udp))?$`);

/**
 * `"8080:80"`, `"127.0.0.1:53:53/udp"`, `80`, or `{target, published, host_ip, protocol}` →
 * `[ip:]host:container[/proto]`. Ranges, IPv6 host addresses and sctp have no spec form.
 */
export function port(value: unknown, at: string, problems: string[]): string | undefined {
  if (isRecord(value)) {
    const target = scalarText(value.target);
    const published = value.published === undefined ? '' : scalarText(value.published);
    const hostIp = value.host_ip === undefined ? '' : scalarText(value.host_ip);
    const protocol = value.protocol === undefined ? '' : scalarText(value.protocol);
    if (published === '' && hostIp !== '') {
      problems.push(`${at}: host_ip without published: give the host port too`);
      return undefined;
    }
    const text = `${hostIp === '' ? '' : `${hostIp}:`}${published === '' ? '' : `${published}:`}${target}${protocol === '' ? '' : `/${protocol}`}`;
    return port(text, at, problems);
  }
  const text = scalarText(value);
  const match = SHORT_PORT.exec(text);
  if (!match) {
    const why = text.includes('-')
      ? 'port ranges have no spec form: list each port'
      : text.includes('[') || text.split(':').length > 3
        ? 'only IPv4 host addresses can be given'
        : /\/(sctp)$/.test(text)
          ? 'only tcp and udp can be published'
          : 'expected [ip:]host:container[/tcp|udp] or container[/tcp|udp]';
    problems.push(`${at}: "${text}": ${why}`);
    return undefined;
  }
  return text;
}

/** Compose's duration (`1m30s`, `500ms`, `10s`) as the spec's: one number and one unit (`90s`). */
export function duration(value: unknown, at: string, problems: string[]): string | undefined {
  const text = scalarText(value);
  if (new RegExp(DURATION_PATTERN).test(text)) return text;
  const parts = [...text.matchAll(/([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)/g)];
  const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    problems.push(`${at}: "${text}" is not a duration (e.g. 10s, 1m30s, 500ms)`);
    return undefined;
  }
  const ms = Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0));
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0 && ms > 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Compose's byte size (`512m`, `1gb`, `67108864`) as the spec's, which reads the same forms. */
export function size(value: unknown, at: string, problems: string[]): string | undefined {
  const text = scalarText(value);
  if (new RegExp(SIZE_PATTERN).test(text)) return text;
  problems.push(`${at}: "${text}" is not a size (e.g. 512m, 1g, or a number of bytes)`);
  return undefined;
}

/** `no`, `always`, `unless-stopped`, `on-failure`, `on-failure:3`. */
export function restartPolicy(value: unknown, at: string, problems: string[]): RestartPolicy | undefined {
  const text = scalarText(value);
  if (text === 'no' || text === 'always' || text === 'unless-stopped' || text === 'on-failure') return { name: text };
  const retries = /^on-failure:([0-9]+)$/.exec(text);
  if (retries) return { name: 'on-failure', maximumRetryCount: Number(retries[1]) };
  problems.push(`${at}: "${text}": expected no, always, unless-stopped, on-failure or on-failure:N`);
  return undefined;
}

/**
 * `test` as `["CMD", …]` (run as it is), `["CMD-SHELL", "…"]` or a string (run by `/bin/sh -c`, as Docker
 * runs CMD-SHELL), with the timings. `["NONE"]` and `disable: true` give no healthcheck: undefined, no problem.
 */
export function healthcheck(value: Record<string, unknown>, at: string, problems: string[]): Healthcheck | undefined {
  const known = new Set(['test', 'interval', 'timeout', 'retries', 'start_period', 'disable']);
  for (const key of Object.keys(value)) {
    if (!known.has(key) && !key.startsWith('x-')) problems.push(`${at}.${key}: not supported by Flotilla's healthcheck`);
  }
  if (value.disable === true) return undefined;
  const test = value.test;
  let exec: string[] | undefined;
  if (typeof test === 'string') exec = ['/bin/sh', '-c', test];
  else if (Array.isArray(test)) {
    const [kind, ...rest] = test.map(scalarText);
    if (kind === 'NONE') return undefined;
    if (kind === 'CMD' && rest.length > 0) exec = rest;
    else if (kind === 'CMD-SHELL' && rest.length === 1) exec = ['/bin/sh', '-c', rest[0]!];
  }
  if (exec === undefined) {
    problems.push(`${at}.test: expected ["CMD", …], ["CMD-SHELL", "command"], ["NONE"] or a command string`);
    return undefined;
  }
  const check: Healthcheck = { exec };
  for (const [from, to] of [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start_period', 'startPeriod'],
  ] as const) {
    if (value[from] === undefined) continue;
    const parsed = duration(value[from], `${at}.${from}`, problems);
    if (parsed !== undefined) check[to] = parsed;
  }
  if (value.retries !== undefined) check.retries = Number(value.retries);
  return check;
}

/** `/dev/ttyUSB0`, `/dev/ttyUSB0:/dev/serial`, `/dev/ttyUSB0:/dev/serial:rw`. */
export function device(value: unknown, at: string, problems: string[]): NonNullable<ContainerSpec['devices']>[number] | undefined {
  const text = scalarText(value);
  const [hostPath, containerPath, permissions, ...rest] = text.split(':');
  if (!hostPath?.startsWith('/') || rest.length > 0 || (containerPath !== undefined && !containerPath.startsWith('/'))) {
    problems.push(`${at}: "${text}": expected /dev/HOST[:/dev/CONTAINER[:rwm]]`);
    return undefined;
  }
  return {
    hostPath,
    ...(containerPath !== undefined ? { containerPath } : {}),
    ...(permissions !== undefined ? { permissions } : {}),
  };
}

/** A service's volume entry: a mount (`name:/path[:ro]`, `/host:/path`) or, for `type: tmpfs`, a tmpfs entry. */
export type Mount = { volume: string } | { tmpfs: string };

const RELATIVE_BIND =
  'a bind mount of a relative path: a device has no project folder, so give the absolute path the file has on the device (or use a named volume)';
const IGNORED_MODES = new Set(['cached', 'delegated', 'consistent']); // Docker Desktop's file sharing hints; no meaning on Linux

/**
 * `data:/var/lib/db`, `/etc/app:/etc/app:ro`, or `{type: volume|bind|tmpfs, source, target, read_only}`.
 * A named volume must be declared under the top-level `volumes:` (`declared`), as Compose requires.
 */
export function mount(value: unknown, declared: ReadonlySet<string>, at: string, problems: string[]): Mount | undefined {
  if (isRecord(value)) return longMount(value, declared, at, problems);
  const text = scalarText(value);
  const parts = text.split(':');
  if (parts.length === 1) {
    problems.push(`${at}: "${text}": an anonymous volume has no spec form: name it (NAME:${text}) and declare NAME under volumes:`);
    return undefined;
  }
  const [source, target, modes, ...rest] = parts as [string, string, string | undefined, ...string[]];
  if (rest.length > 0) {
    problems.push(`${at}: "${text}": expected SOURCE:TARGET[:ro|rw]`);
    return undefined;
  }
  let readOnly = false;
  for (const mode of (modes ?? '').split(',').filter((m) => m !== '')) {
    if (mode === 'ro') readOnly = true;
    else if (mode !== 'rw' && !IGNORED_MODES.has(mode)) {
      problems.push(`${at}: mount option "${mode}" has no spec form (only ro and rw)`);
      return undefined;
    }
  }
  return volumeEntry(source, target, readOnly, declared, at, problems);
}

function longMount(value: Record<string, unknown>, declared: ReadonlySet<string>, at: string, problems: string[]): Mount | undefined {
  const known = new Set(['type', 'source', 'target', 'read_only', 'consistency', 'bind', 'volume', 'tmpfs']);
  const unmappable = Object.keys(value).filter((key) => !known.has(key) && !key.startsWith('x-'));
  for (const key of unmappable) problems.push(`${at}.${key}: not supported by Flotilla's volumes`);
  const type = scalarText(value.type);
  const target = scalarText(value.target);
  if (isRecord(value.bind)) {
    for (const key of Object.keys(value.bind)) {
      if (key !== 'create_host_path') problems.push(`${at}.bind.${key}: not supported by Flotilla's volumes`);
    }
  }
  if (isRecord(value.volume)) {
    for (const key of Object.keys(value.volume)) problems.push(`${at}.volume.${key}: not supported by Flotilla's volumes`);
  }
  if (unmappable.length > 0) return undefined;
  if (type === 'tmpfs') {
    const sizeValue = isRecord(value.tmpfs) ? value.tmpfs.size : undefined;
    const sized = sizeValue === undefined ? undefined : size(sizeValue, `${at}.tmpfs.size`, problems);
    return { tmpfs: sized === undefined ? target : `${target}:size=${sized.toLowerCase()}` };
  }
  if (type !== 'volume' && type !== 'bind') {
    problems.push(`${at}.type: "${type}" has no spec form (volume, bind or tmpfs)`);
    return undefined;
  }
  if (value.source === undefined) {
    problems.push(`${at}: an anonymous volume has no spec form: give it a source and declare it under volumes:`);
    return undefined;
  }
  return volumeEntry(scalarText(value.source), target, value.read_only === true, declared, at, problems);
}

function volumeEntry(
  source: string,
  target: string,
  readOnly: boolean,
  declared: ReadonlySet<string>,
  at: string,
  problems: string[],
): Mount | undefined {
  if (source.startsWith('.') || source.startsWith('~')) {
    problems.push(`${at}: "${source}" is ${RELATIVE_BIND}`);
    return undefined;
  }
  if (!target.startsWith('/')) {
    problems.push(`${at}: the target "${target}" must be an absolute path in the container`);
    return undefined;
  }
  if (!source.startsWith('/') && !declared.has(source)) {
    problems.push(`${at}: volume "${source}" is not declared under the top-level volumes: (add "volumes: {${source}: {}}")`);
    return undefined;
  }
  return { volume: `${source}:${target}${readOnly ? ':ro' : ''}` };
}
