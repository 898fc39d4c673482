/** The hub's registry of relayed sessions: what the ACL is told, and for how long after a session ends. */
import { describe, expect, it } from 'vitest';
import { ENDED_GRACE_MS, type RelayedSession, SessionRegistry } from '../../../broker/remote/session-registry.js';
import { newSessionId } from '../../../shared/remote/requests.js';

function session(deviceId: string): RelayedSession {
  const ignore = () => undefined;
  return {
    id: newSessionId(),
    deviceId,
    actor: 'ops',
    request: { kind: 'forward', app: 'web', port: 80 },
    link: { up: ignore, linkLost: ignore, shutdown: ignore },
  };
}

describe('the session registry', () => {
  it("answers the ACL for the session's own device only, and a while after it ends, for late frames", () => {
    const clock = { ms: 1_000_000 };
    const registry = new SessionRegistry(() => clock.ms);
    const a = session('gw-1');
    const b = session('gw-2');
    registry.add(a);
    registry.add(b);
    expect(registry.isOpen('gw-1', a.id)).toBe(true);
    expect(registry.isOpen('gw-2', a.id)).toBe(false);
    expect(registry.isOpen('gw-1', newSessionId())).toBe(false);
    expect(registry.ofDevice('gw-1')).toEqual([a]);

    registry.remove(a.id);
    expect(registry.get(a.id)).toBeUndefined();
    expect(registry.size).toBe(1);
    clock.ms += ENDED_GRACE_MS - 1;
    expect(registry.isOpen('gw-1', a.id)).toBe(true);
    expect(registry.isOpen('gw-2', a.id)).toBe(false);
    clock.ms += 1;
    expect(registry.isOpen('gw-1', a.id)).toBe(false);
    expect(registry.all()).toEqual([b]);
  });
});
