import { describe, expect, it } from 'vitest';
import { refusalMessage, statedProtocol } from '../../broker/mqtt/protocol-gate.js';
import { Topics } from '../../shared/index.js';

const topics = new Topics();
const will = (topic: string, payload: string) => ({ topic, payload: Buffer.from(payload), qos: 1 as const, retain: true });
const status = (id: string) => topics.device(id, 'status');

describe('statedProtocol', () => {
  it("reads `protocol` from an agent's will on its own status topic", () => {
    expect(statedProtocol({ clientId: 'pi-1', will: will(status('pi-1'), '{"online":false,"at":"x","protocol":3}') }, topics)).toBe(3);
  });

  it('takes a will that states no version, or not as an integer, or is not JSON, for version 1', () => {
    for (const payload of ['{"online":false,"at":"x"}', '{"protocol":"2"}', '{"protocol":2.5}', 'not json', 'null']) {
      expect(statedProtocol({ clientId: 'pi-1', will: will(status('pi-1'), payload) }, topics), payload).toBe(1);
    }
  });

  it("does not judge clients that are not agents: no will, or a will elsewhere (another device's status, another channel)", () => {
    expect(statedProtocol({ clientId: 'cli-1' }, topics)).toBeUndefined();
    expect(statedProtocol({ clientId: 'pi-1', will: will(status('pi-2'), '{"protocol":9}') }, topics)).toBeUndefined();
    expect(statedProtocol({ clientId: 'pi-1', will: will(topics.device('pi-1', 'events'), '{"protocol":9}') }, topics)).toBeUndefined();
    expect(statedProtocol({ clientId: 'svc', will: will('elsewhere/status', '{"protocol":9}') }, topics)).toBeUndefined();
  });
});

describe('refusalMessage', () => {
  it('says which side to upgrade', () => {
    expect(refusalMessage({ deviceId: 'pi-1', protocol: 3, hubProtocols: [1, 2] })).toBe(
      'refused the agent of device pi-1: it speaks protocol version 3, this hub speaks [1, 2]: upgrade the hub',
    );
    expect(refusalMessage({ deviceId: 'pi-1', protocol: 1, hubProtocols: [2, 3] })).toMatch(/: upgrade the agent$/);
  });
});
