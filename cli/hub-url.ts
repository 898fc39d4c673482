/**
 * The hub's address as the CLI takes it, and the error for a hub that does
 * not answer: apart from the API client (client.ts) so the session commands
 * (exec, port-forward, ssh-proxy), which open a WebSocket and not the API,
 * start without loading the API's declarations and schemas.
 */
import { CliError, EXIT_HUB_ERROR, UsageError } from './errors.js';

/** Node's words for a certificate chain it could not verify (no CA pinned, or the wrong one). */
const UNTRUSTED_CERTIFICATE = /unable to verify|self[- ]signed certificate|unable to get (local )?issuer/i;

/** No HTTP answer at all: refused, reset, DNS, timeout. */
export class HubUnreachableError extends CliError {
  constructor(
    readonly hub: string,
    readonly reason: string,
  ) {
    super(`cannot reach the hub at ${hub}: ${reason}`, EXIT_HUB_ERROR, [
      UNTRUSTED_CERTIFICATE.test(reason)
        ? "the hub's TLS certificate is not trusted: pass the CA that signed it with --ca FILE or FLOTILLA_CA (`flotilla certs dev` makes ca.pem)."
        : 'is `flotilla server` running there? Point the CLI at another hub with --hub URL or FLOTILLA_HUB.',
    ]);
    this.name = 'HubUnreachableError';
  }
}

/** `http://host:port[/prefix]`; a trailing `/` is added so API paths resolve under the prefix. */
export function parseHubUrl(hub: string): URL {
  let url: URL;
  try {
    url = new URL(hub);
  } catch {
    throw new UsageError(`invalid hub URL "${hub}": expected e.g. http://127.0.0.1:7070`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`invalid hub URL "${hub}": the HTTP API is served over http:// or https://, not ${url.protocol}//`);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return url;
}
