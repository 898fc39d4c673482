/**
 * When the engine's pull takes over from the agent's own download, and how
 * the agent's failures reach the parts that asked for an image: as the
 * engine's pull would fail (ContainerRuntime.pull).
 */
import { RuntimeError } from '../runtime/errors.js';
import { isFetchError } from './types.js';

/** Node's TLS and protocol errors: the agent's connection failed where the engine's (its own CA, an insecure-registry entry) may not. */
const AGENT_ONLY_CONNECTION_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function connectionCode(err: unknown): string | undefined {
  for (let cause = err, depth = 0; cause && depth < 6; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && AGENT_ONLY_CONNECTION_CODES.has(code)) return code;
  }
  return undefined;
}

/**
 * Why the engine's pull should be tried after the agent's own download
 * failed so, or undefined when it would fail alike and only double the
 * traffic: a registry that refuses the credentials or lacks the image, a
 * link that is down. It is tried when the agent's own path cannot work:
 * - `not_resumable`: the registry cannot serve the image resumably;
 * - `store_failed`: the agent's store cannot be written (the engine's data
 *   root may be elsewhere);
 * - `load_failed`: the engine refused the agent's archive, not the image;
 * - `unreachable` by a TLS or protocol error: the engine may trust the
 *   registry's CA, or reach it as an insecure registry, where the agent does
 *   not; nothing was downloaded yet, so nothing is paid twice;
 * - `bad_response` before the download was planned: the agent cannot read
 *   the image's manifest (a format the engine knows); only manifests were fetched.
 */
export function fallbackReason(err: unknown, planned: boolean): string | undefined {
  if (!isFetchError(err)) return undefined;
  switch (err.code) {
    case 'not_resumable':
      return `the registry cannot serve it resumably (${err.message})`;
    case 'store_failed':
      return `the agent's image store cannot be written (${err.message})`;
    case 'load_failed':
      return `the engine refused the agent's image archive (${err.message})`;
    case 'unreachable': {
      const code = connectionCode(err);
      return code ? `the agent's own connection to the registry fails (${code}: ${err.message}), the engine's may not` : undefined;
    }
    case 'bad_response':
      return planned ? undefined : `the agent cannot read the image's manifest (${err.message})`;
    default:
      return undefined;
  }
}

/** The agent's own failure as the engine's pull would fail (ContainerRuntime.pull); the engine's own passes as it is. */
export function asPullError(err: unknown, image: string): unknown {
  if (!isFetchError(err)) return err;
  const statusCode = err.code === 'not_found' ? 404 : err.code === 'unauthorized' ? 401 : undefined;
  return new RuntimeError('pull_failed', `pull ${image}: ${err.message}`, { cause: err, ...(statusCode ? { statusCode } : {}) });
}
