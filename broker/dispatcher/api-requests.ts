/**
 * The MQTT request API: a request published on `api/{clientId}/request` runs
 * one API method and is answered on `api/{clientId}/response`, correlated by
 * its `correlationId`. The same method table as the HTTP API (api.ts), so the
 * two transports answer alike; who may call what was decided by the broker
 * before the request got here (broker/mqtt/access.ts).
 *
 * Stages: decode → run → respond. Every request that can be correlated gets
 * an answer, an invalid one too (`invalid_request`, or `correlationId: null`
 * when not even that could be read); nothing here throws. One client's
 * requests run one after another, in the order they arrived, as they did
 * when the stores answered synchronously: an apply followed by a get reads
 * what the apply wrote.
 */
import type { Logger } from 'pino';
import { ApiRequest, type ApiResponse, decode, formatIssues } from '../../shared/index.js';
import type { HubApi } from './api.js';
import { toErrorBody } from './errors.js';

export interface ApiRequestDeps {
  api: Pick<HubApi, 'call'>;
  /** Delivers the answer to the client that asked (the dispatcher publishes it on its response topic). */
  respond: (clientId: string, response: ApiResponse) => void;
  logger: Logger;
}

/** Handles one request payload from `clientId`. */
export type ApiRequestHandler = (clientId: string, payload: Buffer) => void;

export function apiRequestHandler({ api, respond, logger }: ApiRequestDeps): ApiRequestHandler {
  const log = logger.child({ component: 'api-requests' });
  /** Each client's requests still running or waiting: the tail of its chain. */
  const running = new Map<string, Promise<void>>();
  return (clientId, payload) => {
    if (payload.length === 0) {
      log.warn({ clientId }, 'empty API request dropped');
      return;
    }
    const next = (running.get(clientId) ?? Promise.resolve())
      .then(async () => respond(clientId, await answer(clientId, payload)))
      .catch((err: unknown) => log.error({ clientId, err }, 'answering an API request failed'));
    running.set(clientId, next);
    void next.finally(() => {
      if (running.get(clientId) === next) running.delete(clientId);
    });
  };

  async function answer(clientId: string, payload: Buffer): Promise<ApiResponse> {
    const result = decode(ApiRequest, payload);
    if (!result.ok) {
      // Answer when we can tell who asked; a caller waiting on its correlation id learns why.
      const reason = formatIssues(result.issues);
      log.warn({ clientId, reason }, 'invalid API request');
      return {
        correlationId: correlationIdOf(payload),
        ok: false,
        error: { code: 'invalid_request', message: `invalid request: ${reason}`, details: { issues: result.issues } },
      };
    }
    const { correlationId, method, params } = result.value;
    try {
      const response: ApiResponse = {
        correlationId,
        ok: true,
        result: await api.call(method, params, { caller: `MQTT client ${clientId}` }),
      };
      log.info({ clientId, method, correlationId }, 'API request served');
      return response;
    } catch (err) {
      const error = toErrorBody(err);
      if (error.code === 'internal') log.error({ clientId, method, err }, 'API method failed');
      else log.info({ clientId, method, code: error.code }, 'API request refused');
      return { correlationId, ok: false, error };
    }
  }
}

/** The answer to a request over the MQTT API's size cap (broker/mqtt/payload-limits.ts), which is dropped unread. */
export function requestTooLargeAnswer(payload: Buffer, limit: number): ApiResponse {
  return {
    correlationId: correlationIdOf(payload),
    ok: false,
    error: {
      code: 'invalid_request',
      message: `request is ${payload.length} bytes; an MQTT API request may be at most ${limit} bytes (${limit / 1024} KiB): send a larger one over HTTP (a set of apps: POST /api/v1/apply, up to 8 MiB)`,
      details: { bytes: payload.length, limit },
    },
  };
}

/** The request's correlation id, if the payload is JSON with one; else null. */
function correlationIdOf(payload: Buffer): string | null {
  try {
    const value = JSON.parse(payload.toString('utf8')) as { correlationId?: unknown };
    return typeof value?.correlationId === 'string' ? value.correlationId : null;
  } catch {
    return null;
  }
}
