/** The hub bus's MQTT filter matching for what it takes from its own broker's publish path (broker/mqtt/hub-bus.ts). */
import { describe, expect, it } from 'vitest';
import { topicMatcher } from '../../broker/mqtt/hub-bus.js';

describe('topicMatcher', () => {
  it('matches a level per +, and nothing shorter or longer', () => {
    const state = topicMatcher('flotilla/v1/devices/+/state');
    expect(state('flotilla/v1/devices/dev-1/state')).toBe(true);
    expect(state('flotilla/v1/devices/dev-1/status')).toBe(false);
    expect(state('flotilla/v1/devices/dev-1/state/x')).toBe(false);
    expect(state('flotilla/v1/devices/state')).toBe(false);
    expect(state('flotilla/v1/devices//state')).toBe(true);
  });

  it('matches any number of levels with a trailing #, the parent level included [MQTT-4.7.1-2]', () => {
    const all = topicMatcher('flotilla/v1/#');
    expect(all('flotilla/v1/devices/dev-1/state')).toBe(true);
    expect(all('flotilla/v1')).toBe(true);
    expect(all('flotilla/v2/devices')).toBe(false);
  });

  it('matches exact filters exactly, and never a $ topic with a leading wildcard [MQTT-4.7.2-1]', () => {
    expect(topicMatcher('$SYS/flotilla/desired-sync')('$SYS/flotilla/desired-sync')).toBe(true);
    expect(topicMatcher('+/flotilla/desired-sync')('$SYS/flotilla/desired-sync')).toBe(false);
    expect(topicMatcher('#')('$SYS/broker/heartbeat')).toBe(false);
    expect(topicMatcher('#')('flotilla/v1/api/svc/request')).toBe(true);
  });
});
