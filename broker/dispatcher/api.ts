/**
 * The hub's API methods, one table shared by HTTP and MQTT request/response so
 * both transports behave identically; what each takes and returns is declared
 * in shared/api/methods.ts. The table is put together from one module per
 * area (apps and rollouts, devices, secrets, jobs, telemetry, auth, audit); each method:
 * validate params → act on the store → say that desired state may have changed.
 */
import { API, type ApiMethodName, type ApiResult, isApiMethod, validate } from '../../shared/index.js';
import type { AuthMethodName } from '../auth/methods.js';
import { type JobMethodDeps, jobMethods, unavailableJobMethods } from '../jobs/methods.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { SecretStore } from '../store/secrets.js';
import type { TelemetryMethodName } from '../telemetry/methods.js';
import { type AgentMethodDeps, agentMethods, unavailableAgentMethods } from './agent-methods.js';
import { type AppMethodDeps, appMethods } from './app-methods.js';
import { type DeviceMethodDeps, deviceMethods } from './device-methods.js';
import { ApiError } from './errors.js';
import { type HubMethodDeps, hubMethods } from './hub-methods.js';
import { type ApiHandlers, type ApiHandlersFor, type CallContext, UNKNOWN_CALLER } from './method.js';
import { type SecretMethodDeps, secretMethods } from './secret-methods.js';

export type { Revocations } from './device-methods.js';

export interface ApiDeps extends AppMethodDeps, DeviceMethodDeps, SecretMethodDeps, HubMethodDeps {
  apps: AppStore;
  devices: DeviceStore;
  secrets: SecretStore;
  /** logs.query, events.query, metrics.query, devices.top (broker/telemetry/methods.ts). */
  telemetry: ApiHandlersFor<TelemetryMethodName>;
  /** tokens.*, serviceaccounts.*, devices.revoke (broker/auth/methods.ts). */
  auth: ApiHandlersFor<AuthMethodName>;
  /** audit.list (broker/remote/audit-methods.ts). */
  audit: ApiHandlersFor<'audit.list'>;
  /** agent.* (agent-methods.ts); without it they answer that this table has no agent targets. */
  agent?: AgentMethodDeps;
  /** jobs.* (broker/jobs/methods.ts); without them they answer that this table has no jobs. */
  jobs?: JobMethodDeps;
}

export function createApi(deps: ApiDeps) {
  // Every declared method: one missing does not compile.
  const handlers: ApiHandlers = {
    ...appMethods(deps),
    ...(deps.agent ? agentMethods(deps.agent) : unavailableAgentMethods()),
    ...(deps.jobs ? jobMethods(deps.jobs) : unavailableJobMethods()),
    ...deviceMethods({ ...deps, agentRollouts: deps.agent?.agentRollouts }),
    ...secretMethods(deps),
    ...hubMethods(deps),
    ...deps.telemetry,
    ...deps.auth,
    ...deps.audit,
  };

  /** Params checked against the method's declared schema before its handler sees them. */
  async function run<M extends ApiMethodName>(name: M, params: unknown, context: CallContext): Promise<ApiResult<M>> {
    const checked = validate(API[name].params, params ?? {});
    if (!checked.ok) throw ApiError.invalid('invalid_request', `params for ${name}`, checked.issues);
    const handler: ApiHandlers[M] = handlers[name];
    return handler(checked.value, context);
  }

  /**
   * Runs a method by name with untrusted params; rejects with ApiError on any caller mistake (an unknown method too).
   * `context` says who called, when the transport knows.
   */
  function call<M extends ApiMethodName>(name: M, params: unknown, context?: CallContext): Promise<ApiResult<M>>;
  function call(name: string, params: unknown, context?: CallContext): Promise<unknown>;
  async function call(name: string, params: unknown, context: CallContext = UNKNOWN_CALLER): Promise<unknown> {
    if (!isApiMethod(name)) throw new ApiError('unknown_method', `unknown method "${name}"`);
    return run(name, params, context);
  }

  return {
    /** The methods this table implements: every declared one (test/unit/api-declaration.test.ts). */
    methods: Object.keys(handlers),
    call,
  };
}

export type HubApi = ReturnType<typeof createApi>;
