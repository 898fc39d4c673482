/**
 * The console's client of the hub's HTTP API: every declared method by name
 * (routes from shared/api/methods.ts, as the CLI sends them), and the
 * Server-Sent Events streams read through fetch, since EventSource cannot
 * send the bearer token.
 */

import { queryString, routeRequest } from '../../../shared/api/http-request.js';
import type { ApiMethodName, ApiParams, ApiResult } from '../../../shared/api/methods.js';
import { API } from '../../../shared/api/methods.js';
import { readSse, type SseEvent } from '../../../shared/sse.js';

export interface FieldIssue {
  /** A JSON pointer into what was sent (`/spec/containers/0/image`), `''` for the whole document. */
  path: string;
  message: string;
}

/** The hub answered with an error (or did not answer: status 0). */
export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
    this.name = 'ApiCallError';
  }
}

export class ConsoleApi {
  constructor(
    private readonly key: string,
    /** Told when the hub refuses the key (401): the console then asks for another. */
    private readonly onUnauthorized: () => void = () => undefined,
  ) {}

  call<M extends ApiMethodName>(method: M, params: ApiParams<M>): Promise<ApiResult<M>> {
    const { path, query, body } = routeRequest(API[method].http, params);
    return this.request(API[method].http.method, `${path}${queryString(query)}`, body) as Promise<ApiResult<M>>;
  }

  /** A route that is not a declared method (`GET /api/v1/whoami`). */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers: { ...this.headers(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiCallError(0, 'unreachable', `the hub did not answer: ${(err as Error).message}`);
    }
    const text = await response.text();
    const parsed = text === '' ? undefined : parseJson(text);
    if (response.ok) return parsed;
    throw this.errorOf(response, parsed);
  }

  /**
   * The events of a follow stream (`?follow=true` routes) until `signal`
   * aborts; throws when the hub ends or refuses it.
   */
  async *follow(path: string, signal: AbortSignal): AsyncGenerator<SseEvent> {
    const response = await fetch(path, { headers: { ...this.headers(), accept: 'text/event-stream' }, signal });
    if (!response.ok || !response.body) throw this.errorOf(response, parseJson(await response.text()));
    yield* readSse(streamChunks(response.body));
  }

  /** Credentials for a WebSocket, which cannot carry an Authorization header: see `sessionProtocols`. */
  get bearer(): string {
    return this.key;
  }

  /** No header without a key: a hub that lets anonymous clients in (on loopback, by default) takes the console without one. */
  private headers(): Record<string, string> {
    return this.key === '' ? {} : { authorization: `Bearer ${this.key}` };
  }

  private errorOf(response: Response, body: unknown): ApiCallError {
    if (response.status === 401) this.onUnauthorized();
    const error = (body as { error?: { code?: unknown; message?: unknown; details?: { issues?: unknown } } } | undefined)?.error;
    const issues = Array.isArray(error?.details?.issues) ? (error.details.issues as FieldIssue[]) : [];
    const message = typeof error?.message === 'string' ? error.message : `${response.status} ${response.statusText}`;
    return new ApiCallError(response.status, typeof error?.code === 'string' ? error.code : 'unknown', message, issues);
  }
}

async function* streamChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
