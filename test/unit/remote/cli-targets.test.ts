/**
 * What the remote-access commands are pointed at: port-forward's
 * `[LOCAL_ADDR:]LOCAL_PORT:[TARGET:]TARGET_PORT`, exec's APP[/CONTAINER],
 * and the usage errors (exit 2) a bad one gives, in the CLI's own words.
 */
import { describe, expect, it } from 'vitest';
import { EXIT_INVALID_INPUT } from '../../../cli/errors.js';
import { describeForwardTarget, parseAppTarget, parseForwardSpec, parseTargetPort } from '../../../cli/remote/targets.js';
import { runCli } from '../../support/processes.js';

describe('parseForwardSpec', () => {
  it.each([
    ['8080:80', { localAddress: '127.0.0.1', localPort: 8080, targetPort: 80 }, '127.0.0.1:80'],
    ['0:22', { localAddress: '127.0.0.1', localPort: 0, targetPort: 22 }, '127.0.0.1:22'],
    ['8080:web:80', { localAddress: '127.0.0.1', localPort: 8080, target: { app: 'web' }, targetPort: 80 }, 'web:80'],
    [
      '8080:web/db:5432',
      { localAddress: '127.0.0.1', localPort: 8080, target: { app: 'web', container: 'db' }, targetPort: 5432 },
      'web/db:5432',
    ],
    ['0.0.0.0:2222:22', { localAddress: '0.0.0.0', localPort: 2222, targetPort: 22 }, '127.0.0.1:22'],
    ['localhost:8080:web:80', { localAddress: 'localhost', localPort: 8080, target: { app: 'web' }, targetPort: 80 }, 'web:80'],
    ['[::1]:8080:80', { localAddress: '::1', localPort: 8080, targetPort: 80 }, '127.0.0.1:80'],
    ['[::1]:8080:web:80', { localAddress: '::1', localPort: 8080, target: { app: 'web' }, targetPort: 80 }, 'web:80'],
  ])('%s', (spec, expected, target) => {
    const parsed = parseForwardSpec(spec);
    expect(parsed).toEqual(expected);
    expect(describeForwardTarget(parsed)).toBe(target);
  });

  it.each([
    ['99999:80', 'the local port "99999" is not a port number (0-65535)'],
    ['8080:0', 'the target port "0" is not a port number (1-65535)'],
    ['8080:70000', 'the target port "70000" is not a port number (1-65535)'],
    ['80', 'expected [LOCAL_ADDR:]LOCAL_PORT:[APP[/CONTAINER]:]TARGET_PORT'],
    ['8080::80', 'expected [LOCAL_ADDR:]LOCAL_PORT:[APP[/CONTAINER]:]TARGET_PORT'],
    ['a:b:c:d:e', 'expected [LOCAL_ADDR:]LOCAL_PORT:[APP[/CONTAINER]:]TARGET_PORT'],
    ['8080:Web:80', 'the target "Web" is not APP or APP/CONTAINER'],
    ['8080:web/db/x:80', 'the target "web/db/x" is not APP or APP/CONTAINER'],
    ['example.com:8080:80', 'the local address "example.com" is not an IP address (or localhost)'],
    ['8080:web:http', 'the target port "http" is not a port number'],
  ])('refuses %s', (spec, message) => {
    let error: unknown;
    try {
      parseForwardSpec(spec);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ exitCode: EXIT_INVALID_INPUT });
    expect((error as Error).message).toContain(`invalid port-forward "${spec}"`);
    expect((error as Error).message).toContain(message);
  });
});

describe('parseAppTarget', () => {
  it('splits APP/CONTAINER', () => {
    expect(parseAppTarget('web')).toEqual({ app: 'web' });
    expect(parseAppTarget('web/main')).toEqual({ app: 'web', container: 'main' });
  });

  it.each(['', 'web/', '/main', 'web/main/x', 'Web', 'web_main', '-web'])('refuses "%s"', (value) => {
    expect(() => parseAppTarget(value)).toThrow(`invalid APP[/CONTAINER] "${value}"`);
  });
});

describe('parseTargetPort', () => {
  it('takes 1-65535 only', () => {
    expect(parseTargetPort('22')).toBe(22);
    expect(() => parseTargetPort('0')).toThrow('invalid port "0"');
    expect(() => parseTargetPort('65536')).toThrow('invalid port "65536"');
    expect(() => parseTargetPort('ssh')).toThrow('invalid port "ssh"');
  });
});

describe('the commands refuse bad targets with exit 2 before contacting any hub', () => {
  it('port-forward, exec and ssh-proxy', { timeout: 60_000 }, async () => {
    const env = { FLOTILLA_HUB: 'http://127.0.0.1:1' };
    const forward = await runCli(['port-forward', 'dev', '99999:80'], { env });
    expect(forward).toMatchObject({ code: 2, stdout: '' });
    expect(forward.stderr).toBe('error: invalid port-forward "99999:80": the local port "99999" is not a port number (0-65535)\n');
    const exec = await runCli(['exec', 'dev', 'web/a/b', '--', 'true'], { env });
    expect(exec.code).toBe(2);
    expect(exec.stderr).toContain('error: invalid APP[/CONTAINER] "web/a/b"');
    const proxy = await runCli(['ssh-proxy', 'Not_A_Device', '22'], { env });
    expect(proxy.code).toBe(2);
    expect(proxy.stderr).toContain('error: invalid device id "Not_A_Device"');
  });
});
