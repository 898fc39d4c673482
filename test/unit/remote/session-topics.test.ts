import { describe, expect, it } from 'vitest';
import { newSessionId } from '../../../shared/remote/requests.js';
import { Topics } from '../../../shared/topics.js';

const topics = new Topics();

describe('session topics', () => {
  it('builds and parses a session topic, refusing malformed ids', () => {
    const sid = newSessionId();
    const topic = topics.session('dev-1', sid, 'up');
    expect(topic).toBe(`flotilla/v1/devices/dev-1/sessions/${sid}/up`);
    expect(topics.parse(topic)).toEqual({ kind: 'session', deviceId: 'dev-1', sessionId: sid, direction: 'up' });
    expect(topics.parse(`flotilla/v1/devices/dev-1/sessions/short/up`)).toBeUndefined();
    expect(topics.parse(`flotilla/v1/devices/dev-1/sessions/${sid}/sideways`)).toBeUndefined();
    expect(() => topics.session('dev-1', '+', 'down')).toThrow(/invalid session id/);
  });

  it('finds every filter that could match a session topic', () => {
    const sid = newSessionId();
    expect(topics.parseSessionFilter(topics.deviceSessions('dev-1', 'down'))).toEqual({
      deviceId: 'dev-1',
      sessionId: undefined,
      direction: 'down',
    });
    expect(topics.parseSessionFilter(`flotilla/v1/devices/dev-2/sessions/${sid}/up`)).toEqual({
      deviceId: 'dev-2',
      sessionId: sid,
      direction: 'up',
    });
    expect(topics.parseSessionFilter('flotilla/v1/devices/+/#')).toEqual({
      deviceId: undefined,
      sessionId: undefined,
      direction: undefined,
    });
    expect(topics.parseSessionFilter('#')).toEqual({ deviceId: undefined, sessionId: undefined, direction: undefined });
    expect(topics.parseSessionFilter('flotilla/+/devices/x/sessions/+/+')).toMatchObject({ deviceId: 'x' });
    expect(topics.parseSessionFilter('flotilla/v1/devices/+/state')).toBeUndefined();
    expect(topics.parseSessionFilter('flotilla/v1/api/+/request')).toBeUndefined();
  });
});
