import { describe, expect, it } from 'vitest';
import { probeFailure, RedisUnreachableError, redactedRedisUrl } from '../../broker/mqtt/cluster-redis.js';

describe('why the start-up probe of --redis failed', () => {
  it('says a refused login may be a password with URL separators in it, and how to write one', () => {
    for (const said of ['WRONGPASS invalid username-password pair or user is disabled.', 'NOAUTH Authentication required.']) {
      const message = new RedisUnreachableError(redactedRedisUrl('redis://:s3@cret@127.0.0.1:6379'), probeFailure(said)).message;
      expect(message).toBe(
        `Redis at redis://:***@127.0.0.1:6379 (--redis) refused the login: ${said} (if the password is right, percent-encode @ / : # ? in it: %40 %2F %3A %23 %3F)`,
      );
      expect(message).not.toContain('s3@cret');
    }
  });

  it('says an unreachable server is unreachable, with no word on passwords', () => {
    expect(probeFailure('connect ECONNREFUSED 127.0.0.1:6379')).toBe('is unreachable: connect ECONNREFUSED 127.0.0.1:6379');
  });
});
