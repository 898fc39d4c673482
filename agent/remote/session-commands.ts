/**
 * What a command on the device's `commands` topic asks of remote access: a
 * pure reading of an already schema-checked Command, so every refusal is a
 * fast unit test. A command past its `expiresAt` is ignored: the hub stopped
 * waiting for its reply (a QoS 1 copy held across an outage).
 */
import { type Command, formatIssues, validate } from '../../shared/index.js';
import { SESSION_COMMANDS, SessionCloseArgs, SessionOpenArgs } from '../../shared/remote/index.js';

export type SessionCommand =
  | { kind: 'open'; args: SessionOpenArgs }
  | { kind: 'close'; args: SessionCloseArgs }
  /** Its time is up: no reply. */
  | { kind: 'expired' }
  /** A session command with bad args: answered `invalid`. */
  | { kind: 'invalid'; reason: string }
  /** Not a session command: someone else's, or none. */
  | { kind: 'other' };

export function readSessionCommand(command: Command, nowMs: number): SessionCommand {
  if (command.type !== SESSION_COMMANDS.open && command.type !== SESSION_COMMANDS.close) return { kind: 'other' };
  if (Date.parse(command.expiresAt) <= nowMs) return { kind: 'expired' };
  const args = command.args ?? {};
  if (command.type === SESSION_COMMANDS.open) {
    const result = validate(SessionOpenArgs, args);
    return result.ok ? { kind: 'open', args: result.value } : { kind: 'invalid', reason: formatIssues(result.issues) };
  }
  const result = validate(SessionCloseArgs, args);
  return result.ok ? { kind: 'close', args: result.value } : { kind: 'invalid', reason: formatIssues(result.issues) };
}
