/**
 * The shell command that runs this very CLI again, with the hub and CA it
 * was run with: what the inventory puts in each host's ProxyCommand, so
 * Ansible's ssh reaches devices through the same hub, whatever PATH ssh
 * sees. Never the token: ssh-proxy reads FLOTILLA_TOKEN from the environment
 * Ansible passes on, so the key is not written into inventories and logs.
 */
import { resolve } from 'node:path';

/** One word for a POSIX shell: single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

export interface SelfCommandOptions {
  hub: string;
  ca?: string;
  /** The node binary and the CLI's script; this process's by default. */
  execPath?: string;
  script?: string;
}

export function selfCommand(options: SelfCommandOptions): string {
  const words = [options.execPath ?? process.execPath, resolve(options.script ?? process.argv[1] ?? 'flotilla'), '--hub', options.hub];
  if (options.ca !== undefined) words.push('--ca', resolve(options.ca));
  return words.map(shellQuote).join(' ');
}
