import { describe, expect, it } from 'vitest';
import { probeHost } from '../../agent/health/probe.js';
import { healthVerdict } from '../../agent/health/verdict.js';
import { candidate, plain, STARTED, withHttp } from '../support/health-fixtures.js';

const started = STARTED;
const policy = { healthTimeoutMs: 60_000, minReadyMs: 10_000 };

const container = candidate;

const at = (seconds: number) => started + seconds * 1000;

describe('healthVerdict', () => {
  it('fails a container that exited or restarted, whatever the check', () => {
    expect(healthVerdict(container({ state: 'exited', exitCode: 2 }), withHttp, policy, undefined, at(1))).toEqual({
      status: 'unhealthy',
      reason: 'container web exited with code 2',
    });
    expect(healthVerdict(container({ restartCount: 1 }), plain, policy, undefined, at(30))).toEqual({
      status: 'unhealthy',
      reason: 'container web restarted 1 time(s)',
    });
  });

  it('passes an http check on the first good probe, waits on bad ones, fails at the deadline', () => {
    expect(healthVerdict(container(), withHttp, policy, { ok: true, detail: 'GET … answered 200' }, at(2)).status).toBe('healthy');
    expect(healthVerdict(container(), withHttp, policy, { ok: false, detail: 'GET … answered 503' }, at(20))).toEqual({
      status: 'pending',
      reason: 'waiting for health check (20s of 60s): GET … answered 503',
    });
    expect(healthVerdict(container(), withHttp, policy, { ok: false, detail: 'GET … answered 503' }, at(61))).toEqual({
      status: 'unhealthy',
      reason: 'health check failed for 61s of 60s: GET … answered 503',
    });
  });

  it("uses the image's Docker HEALTHCHECK when the spec has none", () => {
    expect(healthVerdict(container({ health: 'healthy' }), plain, policy, undefined, at(1)).status).toBe('healthy');
    expect(healthVerdict(container({ health: 'unhealthy' }), plain, policy, undefined, at(1)).status).toBe('unhealthy');
    expect(healthVerdict(container({ health: 'starting' }), plain, policy, undefined, at(5)).status).toBe('pending');
    expect(healthVerdict(container({ health: 'starting' }), plain, policy, undefined, at(60)).status).toBe('unhealthy');
  });

  it('otherwise asks for minReadySeconds of running without a restart', () => {
    expect(healthVerdict(container(), plain, policy, undefined, at(9))).toEqual({
      status: 'pending',
      reason: 'running for 9s of 10s without a restart',
    });
    expect(healthVerdict(container(), plain, policy, undefined, at(10))).toEqual({
      status: 'healthy',
      reason: 'running for 10s without a restart',
    });
  });

  it('waits for a container that is not running yet', () => {
    expect(healthVerdict(container({ state: 'created', startedAt: undefined }), plain, policy, undefined, at(1)).status).toBe('pending');
  });
});

describe('probeHost', () => {
  it("reaches a container's localhost at its own address, or the host's under host networking", () => {
    expect(probeHost('localhost', container())).toBe('172.17.0.5');
    expect(probeHost('127.0.0.1', container())).toBe('172.17.0.5');
    expect(probeHost('localhost', container({ networkMode: 'host' }))).toBe('127.0.0.1');
    expect(probeHost('db.internal', container())).toBe('db.internal');
    expect(probeHost('localhost', container({ ipAddress: undefined }))).toBeUndefined();
  });
});
