/**
 * What a replica remembers of remote-access sessions other replicas opened: only opens heard from
 * elsewhere, forgotten on close, after a day, or (oldest first) past 10,000; and nothing from a
 * message that is not a session command.
 */
import { describe, expect, it } from 'vitest';
import type { HubBus, MessageOrigin } from '../../../broker/mqtt/hub-bus.js';
import { SessionsElsewhere } from '../../../broker/remote/sessions-elsewhere.js';
import { Topics } from '../../../shared/index.js';
import { SESSION_COMMANDS } from '../../../shared/remote/requests.js';

const topics = new Topics();
const DAY_MS = 24 * 3600_000;

type Handler = (topic: string, payload: Buffer, origin: MessageOrigin) => void;

async function sessionsWithClock() {
  const clock = { now: 1_000_000 };
  const sessions = new SessionsElsewhere(() => clock.now);
  let handler: Handler | undefined;
  const bus = {
    publish: async () => {},
    subscribe: async (filters, onMessage) => {
      expect(filters).toEqual([topics.allDevices('commands')]);
      handler = onMessage;
    },
  } as Partial<HubBus> as HubBus;
  await sessions.attach(bus, topics);
  const hear = (device: string, type: string, sessionId: unknown, publishedHere = false, publishedBy = 'replica-b') =>
    handler!(
      topics.device(device, 'commands'),
      Buffer.from(
        JSON.stringify({ id: `c-${Math.random()}`, type, args: { sessionId }, expiresAt: new Date(clock.now + 60_000).toISOString() }),
      ),
      { publishedHere, publishedBy },
    );
  return {
    sessions,
    clock,
    hear,
    raw: (topic: string, payload: string) => handler!(topic, Buffer.from(payload), { publishedHere: false }),
  };
}

describe('sessions opened on other replicas', () => {
  it('hands over the sessions a replica opened, once, when it is gone, and keeps the others', async () => {
    const { sessions, hear } = await sessionsWithClock();
    hear('dev-1', SESSION_COMMANDS.open, 's-1', false, 'replica-b');
    hear('dev-2', SESSION_COMMANDS.open, 's-2', false, 'replica-b');
    hear('dev-1', SESSION_COMMANDS.open, 's-3', false, 'replica-c');
    hear('dev-2', SESSION_COMMANDS.open, 's-4', false, 'replica-b');
    hear('dev-2', SESSION_COMMANDS.close, 's-4', false, 'replica-b');
    expect(sessions.replicas()).toEqual(new Set(['replica-b', 'replica-c']));
    expect(sessions.takeOf('replica-b')).toEqual([
      { deviceId: 'dev-1', sessionId: 's-1' },
      { deviceId: 'dev-2', sessionId: 's-2' },
    ]);
    expect(sessions.takeOf('replica-b')).toEqual([]);
    expect(sessions.isOpen('dev-1', 's-1')).toBe(false);
    expect(sessions.isOpen('dev-1', 's-3')).toBe(true);
    expect(sessions.replicas()).toEqual(new Set(['replica-c']));
  });

  it('lets a device’s frames through for a session opened elsewhere until its close is heard, but not for one opened here', async () => {
    const { sessions, hear } = await sessionsWithClock();
    hear('dev-1', SESSION_COMMANDS.open, 's-1');
    hear('dev-1', SESSION_COMMANDS.open, 's-here', true);
    expect(sessions.isOpen('dev-1', 's-1')).toBe(true);
    expect(sessions.isOpen('dev-2', 's-1')).toBe(false);
    expect(sessions.isOpen('dev-1', 's-here')).toBe(false);
    hear('dev-1', SESSION_COMMANDS.close, 's-1');
    expect(sessions.isOpen('dev-1', 's-1')).toBe(false);
  });

  it('forgets a session whose close it never heard a day after its open', async () => {
    const { sessions, clock, hear } = await sessionsWithClock();
    hear('dev-1', SESSION_COMMANDS.open, 's-old');
    clock.now += DAY_MS;
    expect(sessions.isOpen('dev-1', 's-old')).toBe(true);
    clock.now += 1;
    expect(sessions.isOpen('dev-1', 's-old')).toBe(false);
  });

  it('keeps at most 10,000 sessions, dropping the oldest open first; an open heard again counts as new', async () => {
    const { sessions, hear } = await sessionsWithClock();
    for (let i = 0; i < 10_000; i++) hear(`dev-${i}`, SESSION_COMMANDS.open, `s-${i}`);
    hear('dev-0', SESSION_COMMANDS.open, 's-0');
    hear('dev-new', SESSION_COMMANDS.open, 's-new');
    expect(sessions.isOpen('dev-0', 's-0')).toBe(true);
    expect(sessions.isOpen('dev-1', 's-1')).toBe(false);
    expect(sessions.isOpen('dev-2', 's-2')).toBe(true);
    expect(sessions.isOpen('dev-new', 's-new')).toBe(true);
  });

  it('ignores commands that are not a session’s, malformed payloads and ids that are not strings', async () => {
    const { sessions, hear, raw } = await sessionsWithClock();
    hear('dev-1', 'restart', 's-1');
    hear('dev-1', SESSION_COMMANDS.open, 42);
    raw(topics.device('dev-1', 'commands'), '{not json');
    raw(topics.device('dev-1', 'commands'), JSON.stringify({ type: SESSION_COMMANDS.open, args: { sessionId: 's-2' } }));
    expect(sessions.isOpen('dev-1', 's-1')).toBe(false);
    expect(sessions.isOpen('dev-1', '42')).toBe(false);
    expect(sessions.isOpen('dev-1', 's-2')).toBe(false);
  });
});
