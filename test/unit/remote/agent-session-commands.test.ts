/** How the agent reads a command on its `commands` topic for remote access: open, close, expired, invalid, or not its business. */
import { describe, expect, it } from 'vitest';
import { readSessionCommand } from '../../../agent/remote/session-commands.js';
import type { Command } from '../../../shared/index.js';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const SESSION = 'AbCdEfGhIjKlMnOpQrStUv';
const later = new Date(NOW + 30_000).toISOString();
const open = { sessionId: SESSION, request: { kind: 'shell', tty: true }, window: 262144, openedBy: 'ops@example' };

function command(type: string, args: Record<string, unknown> | undefined, expiresAt = later): Command {
  return { id: 'c1', type, ...(args !== undefined ? { args } : {}), expiresAt };
}

describe('readSessionCommand', () => {
  it('reads a valid open and a valid close', () => {
    expect(readSessionCommand(command('session.open', open), NOW)).toEqual({ kind: 'open', args: open });
    expect(readSessionCommand(command('session.close', { sessionId: SESSION, reason: 'left' }), NOW)).toEqual({
      kind: 'close',
      args: { sessionId: SESSION, reason: 'left' },
    });
  });

  it('ignores a command whose time is up, however valid', () => {
    expect(readSessionCommand(command('session.open', open, new Date(NOW).toISOString()), NOW)).toEqual({ kind: 'expired' });
    expect(readSessionCommand(command('session.open', { bad: 1 }, new Date(NOW - 1).toISOString()), NOW)).toEqual({ kind: 'expired' });
  });

  it('refuses bad args with a reason that names the field', () => {
    const noWindow = readSessionCommand(command('session.open', { ...open, window: 1 }), NOW);
    expect(noWindow).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('window') });
    const badKind = readSessionCommand(command('session.open', { ...open, request: { kind: 'telnet' } }), NOW);
    expect(badKind.kind).toBe('invalid');
    const guessedId = readSessionCommand(command('session.close', { sessionId: '../../#', reason: 'x' }), NOW);
    expect(guessedId).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('sessionId') });
    expect(readSessionCommand(command('session.open', undefined), NOW).kind).toBe('invalid');
  });

  it('leaves other commands alone', () => {
    expect(readSessionCommand(command('app.restart', { app: 'web' }), NOW)).toEqual({ kind: 'other' });
  });
});
