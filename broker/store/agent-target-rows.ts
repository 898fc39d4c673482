/**
 * Agent-target rows as both engines store them (agent_targets, agent_target_revisions): the JSON
 * columns hold canonical JSON (keys sorted at every level), so a target's stored settings compare
 * with a new spec as strings, whatever order the caller wrote the keys in, and read back the same
 * from either engine.
 */
import { canonicalJson } from '../../shared/canonical-json.js';
import type { AgentRelease, AgentTargetSpec, StoredAgentRevision, StoredAgentTarget } from './agent-targets.js';

export interface AgentTargetRow {
  name: string;
  revision: number;
  scheduling: string;
  release: string;
  rollout: string | null;
  created_at: string;
  updated_at: string;
}

export interface AgentRevisionRow {
  revision: number;
  name: string;
  release: string;
  created_at: string;
}

/** The three JSON columns of a spec; `rollout` is NULL when the target has no rollout policy. */
export interface AgentTargetColumns {
  scheduling: string;
  release: string;
  rollout: string | null;
}

export function agentTargetColumns(spec: AgentTargetSpec): AgentTargetColumns {
  return {
    scheduling: canonicalJson(spec.scheduling),
    release: canonicalJson(spec.release),
    rollout: spec.rollout === undefined ? null : canonicalJson(spec.rollout),
  };
}

/** Whether the stored target already holds these settings: then a put writes nothing. */
export function sameSettings(row: AgentTargetRow, columns: AgentTargetColumns): boolean {
  return row.scheduling === columns.scheduling && row.release === columns.release && row.rollout === columns.rollout;
}

export function agentTargetFromRow(row: AgentTargetRow): StoredAgentTarget {
  return {
    name: row.name,
    scheduling: JSON.parse(row.scheduling) as StoredAgentTarget['scheduling'],
    release: JSON.parse(row.release) as AgentRelease,
    ...(row.rollout === null ? {} : { rollout: JSON.parse(row.rollout) as NonNullable<StoredAgentTarget['rollout']> }),
    revision: row.revision,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function agentRevisionFromRow(row: AgentRevisionRow): StoredAgentRevision {
  return { revision: row.revision, name: row.name, release: JSON.parse(row.release) as AgentRelease, createdAt: row.created_at };
}
