/** agent.upgrade, agent.targets, agent.delete, agent.rollout.*: the agent release each device must run (docs/agent-upgrades.md). */
import { ApiError } from './errors.js';
import type { ApiHandlersFor } from './method.js';

export type AgentMethodName =
  | 'agent.upgrade'
  | 'agent.targets'
  | 'agent.delete'
  | 'agent.rollout.status'
  | 'agent.rollout.pause'
  | 'agent.rollout.resume'
  | 'agent.rollout.abort';

export function agentMethods(): ApiHandlersFor<AgentMethodName> {
  const unavailable = () => {
    throw new ApiError('invalid_request', 'agent upgrades are not available on this hub yet');
  };
  return {
    'agent.upgrade': unavailable,
    'agent.targets': unavailable,
    'agent.delete': unavailable,
    'agent.rollout.status': unavailable,
    'agent.rollout.pause': unavailable,
    'agent.rollout.resume': unavailable,
    'agent.rollout.abort': unavailable,
  };
}
