/**
 * A `fetch` that trusts one CA (the fleet's own, `--ca FILE`) for https hubs
 * instead of the system's trust store: the certificate pinning the agent does
 * for mqtts, for the CLI's HTTP calls. Node's global fetch (undici) takes no
 * `ca` without a dispatcher we cannot import, so https goes through
 * `node:https` with `ca` (node-fetch.ts); a redirect is not followed, since
 * following it would leave the pinned connection. http:// URLs go to the
 * base fetch unchanged.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';
import { nodeFetch } from './node-fetch.js';

export function pinnedFetch(ca: string, base: typeof fetch = globalThis.fetch): typeof fetch {
  const pinned = nodeFetch({ ca });
  return (input, init) => {
    const url = new URL(typeof input === 'object' && 'url' in input ? input.url : String(input));
    return url.protocol === 'https:' ? pinned(input, init) : base(input, init);
  };
}

/** The PEM text of `--ca FILE`, refused early (exit 2) when it is missing or holds no certificate. */
export function readCaFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the CA file ${path}: ${(err as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError(`the CA file ${path} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  }
  return text;
}
