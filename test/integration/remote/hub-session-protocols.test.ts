/**
 * The key of a session WebSocket as a subprotocol, which is how a browser
 * (the web console's terminal) sends it: the client offers `flotilla.session`
 * and `flotilla.bearer.<base64url key>`, the hub selects `flotilla.session`
 * and judges the key as it judges an Authorization header. Real `ws`
 * clients against a real hub that requires credentials; the device is known
 * but not connected, so a session that gets past the key and the role ends
 * `offline`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { bearerProtocol, SESSION_PROTOCOL } from '../../../broker/remote/session-protocols.js';
import { SESSION_FAILURES, type SessionRequest } from '../../../shared/remote/index.js';
import { adminKey, bearer, createAccount, registerDevice } from '../../support/auth.js';
import { Cleanup } from '../../support/cleanup.js';
import { startTestHub, type TestHub } from '../../support/hub.js';
import { waitFor } from '../../support/wait.js';

const DEVICE = 'gw-1';
const hostShell: SessionRequest = { kind: 'shell', tty: true };

interface Outcome {
  protocol: string;
  answer: { type: string; error?: { code: string; message: string } } | undefined;
  code: number;
}

async function attempt(hub: TestHub, protocols: string[], headers: Record<string, string> = {}): Promise<Outcome> {
  const url = `${hub.httpUrl.replace('http:', 'ws:')}/api/v1/devices/${DEVICE}/sessions`;
  const ws = new WebSocket(url, protocols, { headers });
  const texts: string[] = [];
  let code: number | undefined;
  ws.on('message', (data, isBinary) => {
    if (!isBinary) texts.push(data.toString());
  });
  ws.on('close', (closeCode) => {
    code = closeCode;
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const protocol = ws.protocol;
  ws.send(JSON.stringify(hostShell));
  await waitFor('the socket to close', () => code !== undefined, { timeoutMs: 10_000, intervalMs: 10 });
  return { protocol, answer: texts[0] ? JSON.parse(texts[0]) : undefined, code: code! };
}

describe('session WebSocket keys as a subprotocol', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { allowAnonymous: false } }));
    await registerDevice(hub, DEVICE);
  });
  afterEach(() => cleanup.run());

  it('selects flotilla.session and takes the key it carries as a bearer key', async () => {
    const admin = await attempt(hub, [SESSION_PROTOCOL, bearerProtocol(adminKey(hub))]);
    expect(admin.protocol).toBe(SESSION_PROTOCOL);
    // Past the key and the role: the device is simply not connected.
    expect(admin.answer?.error?.code).toBe('offline');
    expect(admin.code).toBe(SESSION_FAILURES.offline);

    const viewer = await attempt(hub, [SESSION_PROTOCOL, bearerProtocol(await createAccount(hub, 'wall', 'viewer'))]);
    expect(viewer.answer?.error).toEqual({ code: 'forbidden', message: expect.stringMatching(/needs role admin; wall is viewer/) });
    expect(viewer.code).toBe(SESSION_FAILURES.forbidden);
  });

  it('refuses a wrong or malformed key in the subprotocol exactly as in the header', async () => {
    const logged = () => hub.logs.matching('HTTP credentials refused').length;
    for (const key of ['admin.wrong', 'nobody.x']) {
      const header = await attempt(hub, [], bearer(key));
      const before = logged();
      const carried = await attempt(hub, [SESSION_PROTOCOL, bearerProtocol(key)]);
      expect(carried.protocol).toBe(SESSION_PROTOCOL);
      expect(carried.answer).toEqual(header.answer);
      expect(carried.code).toBe(SESSION_FAILURES.unauthorized);
      expect(logged()).toBe(before + 1);
    }
    const garbled = await attempt(hub, [SESSION_PROTOCOL, 'flotilla.bearer.!!!']);
    expect(garbled.code).toBe(SESSION_FAILURES.unauthorized);
    const none = await attempt(hub, [SESSION_PROTOCOL]);
    expect(none.answer?.error?.code).toBe('unauthorized');
  });

  it('keeps the Authorization header working, and lets it decide when both are sent', async () => {
    const plain = await attempt(hub, [], bearer(adminKey(hub)));
    expect(plain.protocol).toBe('');
    expect(plain.answer?.error?.code).toBe('offline');

    const both = await attempt(hub, [SESSION_PROTOCOL, bearerProtocol(adminKey(hub))], bearer('admin.wrong'));
    expect(both.answer?.error?.code).toBe('unauthorized');
  });

  it('fails the handshake for a client that offers only other protocols', async () => {
    await expect(attempt(hub, ['mqtt'], bearer(adminKey(hub)))).rejects.toThrow(/protocol/i);
  });
});
