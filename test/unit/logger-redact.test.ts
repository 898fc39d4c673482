/** The hub's and agent's logger: credentials are redacted from what reaches the destination, other fields are not. */
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED } from '../../shared/logger.js';

function capture() {
  const lines: string[] = [];
  const logger = createLogger('info', 'flotilla-test', { write: (line: string) => void lines.push(line) });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const CREDENTIALS = {
  password: 'pw-top-level',
  secret: 'device-secret-value',
  token: 'flt-reg-abcdefghijklmnop',
  key: 'admin.0123456789abcdef',
  authorization: 'Bearer admin.0123456789abcdef',
  apiKey: 'api-key-value',
};

describe('createLogger redaction', () => {
  it('redacts credential fields at the top, one and two levels down, and in headers', () => {
    const { logger, lines, records } = capture();
    logger.info(
      {
        deviceId: 'dev-1',
        ...CREDENTIALS,
        login: { username: 'ops', password: 'pw-one-level', token: 'tok-one-level' },
        account: { credentials: { password: 'pw-two-levels', key: 'key-two-levels', secret: 'secret-two-levels' } },
        req: {
          method: 'POST',
          headers: { authorization: 'Bearer hdr-token', cookie: 'session=hdr-cookie', 'content-type': 'application/json' },
        },
        res: { headers: { 'set-cookie': 'session=set-cookie-value' } },
        devices: [{ id: 'dev-2', secret: 'secret-in-array' }],
      },
      'something happened',
    );
    const output = lines.join('');
    for (const value of [
      ...Object.values(CREDENTIALS),
      'pw-one-level',
      'tok-one-level',
      'pw-two-levels',
      'key-two-levels',
      'secret-two-levels',
      'hdr-token',
      'hdr-cookie',
      'set-cookie-value',
      'secret-in-array',
    ]) {
      expect(output, value).not.toContain(value);
    }
    const [record] = records();
    expect(record).toMatchObject({
      msg: 'something happened',
      deviceId: 'dev-1',
      name: 'flotilla-test',
      password: REDACTED,
      authorization: REDACTED,
      login: { username: 'ops', password: REDACTED, token: REDACTED },
      account: { credentials: { password: REDACTED, key: REDACTED, secret: REDACTED } },
      req: { method: 'POST', headers: { authorization: REDACTED, cookie: REDACTED, 'content-type': 'application/json' } },
      res: { headers: { 'set-cookie': REDACTED } },
      devices: [{ id: 'dev-2', secret: REDACTED }],
    });
  });

  it('redacts in child loggers’ bindings too, and leaves records without credentials alone', () => {
    const { logger, records } = capture();
    logger.child({ component: 'auth', token: 'bound-token' }).warn({ username: 'dev-1', reason: 'wrong password' }, 'MQTT login refused');
    logger.info({ n: 1, labels: { zone: 'a' } }, 'plain');
    const [refused, plain] = records();
    expect(refused).toMatchObject({ component: 'auth', token: REDACTED, username: 'dev-1', reason: 'wrong password' });
    expect(JSON.stringify(refused)).not.toContain('bound-token');
    expect(plain).toMatchObject({ n: 1, labels: { zone: 'a' }, msg: 'plain' });
  });
});
