/**
 * The bounded secret checker: real scrypt hashes, counted by how many checks
 * run at once, shared between a device and its own retry, and refused at
 * once (not queued) when too many wait.
 */
import { describe, expect, it } from 'vitest';
import { hashSecret, VerifiedCache } from '../../broker/auth/hashing.js';
import { SecretVerifier } from '../../broker/auth/verifier.js';

describe('SecretVerifier', () => {
  it('answers right and wrong secrets, and remembers a success', async () => {
    const stored = await hashSecret('right');
    const cache = new VerifiedCache();
    const verifier = new SecretVerifier(cache, 1, 10);
    expect(await verifier.verify('device:gw-1', 'wrong', stored)).toBe(false);
    expect(cache.has('device:gw-1', 'wrong', stored)).toBe(false);
    expect(await verifier.verify('device:gw-1', 'right', stored)).toBe(true);
    expect(cache.has('device:gw-1', 'right', stored)).toBe(true);
  });

  it('shares one check between a login and its retry, and says busy once more checks wait than it allows', async () => {
    const secrets = ['a', 'b', 'c', 'd', 'e'];
    const hashes = await Promise.all(secrets.map((s) => hashSecret(s)));
    // One running, two waiting at most.
    const verifier = new SecretVerifier(new VerifiedCache(), 1, 2);
    const first = verifier.verify('device:a', 'a', hashes[0]!);
    const retry = verifier.verify('device:a', 'a', hashes[0]!);
    expect(retry).toBe(first);
    const waiting = [verifier.verify('device:b', 'b', hashes[1]!), verifier.verify('device:c', 'c', hashes[2]!)];
    expect(verifier.queued).toBe(2);
    expect(await verifier.verify('device:d', 'd', hashes[3]!)).toBe('busy');
    expect(await Promise.all([first, ...waiting])).toEqual([true, true, true]);
    // Once the queue has drained, checks are taken again.
    expect(verifier.queued).toBe(0);
    expect(await verifier.verify('device:e', 'e', hashes[4]!)).toBe(true);
  });

  it('never runs more checks at once than its concurrency', async () => {
    const hashes = await Promise.all(Array.from({ length: 12 }, (_, i) => hashSecret(`s${i}`)));
    const verifier = new SecretVerifier(new VerifiedCache(), 3, 100);
    const all = hashes.map((h, i) => verifier.verify(`device:d${i}`, `s${i}`, h));
    // 3 take a thread at once; the other 9 wait their turn.
    expect(verifier.queued).toBe(9);
    expect(await Promise.all(all)).toEqual(hashes.map(() => true));
    expect(verifier.queued).toBe(0);
  });
});
