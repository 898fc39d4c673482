/**
 * Runs a server so that it dies with this process, however this process ends: through util-linux's
 * setpriv, which asks the kernel for a parent-death signal (SIGKILL) and then execs the server in
 * place (same pid). A test worker killed outright, whose exit hooks never run, leaves no server
 * behind.
 */
export const SETPRIV = '/usr/bin/setpriv';

/** The command and arguments to spawn instead of `command args…`. */
export function dyingWithParent(command: string, args: readonly string[]): [string, string[]] {
  return [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', command, ...args]];
}
