/**
 * Credentials on a test hub: the bootstrap admin key from `<dataDir>/admin.key`,
 * service accounts and registered devices made through the real HTTP API.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { http } from './http.js';
import type { TestHub } from './hub.js';

export function adminKey(hub: TestHub): string {
  return readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** A service account's API key. */
export async function createAccount(hub: TestHub, name: string, role: 'admin' | 'operator' | 'viewer'): Promise<string> {
  const res = await http(hub.httpUrl, 'POST', '/api/v1/serviceaccounts', { name, role }, bearer(adminKey(hub)));
  if (res.status !== 200) throw new Error(`creating account ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.key as string;
}

export async function createToken(
  hub: TestHub,
  params: { labels?: Record<string, string>; maxUses?: number; expiresInSeconds?: number } = {},
) {
  const res = await http(hub.httpUrl, 'POST', '/api/v1/tokens', params, bearer(adminKey(hub)));
  if (res.status !== 200) throw new Error(`creating a token: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; token: string; labels: Record<string, string>; maxUses: number; expiresAt: string };
}

/** Registers a device with a fresh single-use token; returns its id and secret. */
export async function registerDevice(hub: TestHub, deviceId: string, labels: Record<string, string> = {}) {
  const { token } = await createToken(hub);
  const res = await http(hub.httpUrl, 'POST', '/api/v1/register', { token, deviceId, labels });
  if (res.status !== 200) throw new Error(`registering ${deviceId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { deviceId: string; secret: string; hubKey: string; mqtt: { port: number; tlsPort?: number } };
}
