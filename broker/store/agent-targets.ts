/**
 * Agent targets (`flotilla agent upgrade`, docs/agent-upgrades.md): which agent release
 * the devices a selection picks must run. Each change is a new revision, numbered from one
 * sequence across every target, so "the target set last" is simply the higher revision, and
 * a device's desired agent section names the revision that set it.
 *
 * Invariants: revision numbers only grow and are never reused, also after a target is
 * deleted (a device that rolled back revision 7 must never meet another revision 7); a
 * stored revision is never rewritten, so a rollout's devices still on an older revision can
 * always be told what it was.
 */
import type { RolloutPolicy, Scheduling } from '../../shared/index.js';

/** One release tarball of a version, as the hub found it in its releases dir. */
export interface AgentBundleFile {
  /** The file name under the releases dir (`flotilla-0.3.0-linux-arm64.tar.gz`). */
  file: string;
  sha256: string;
  bytes: number;
  unpackedBytes: number;
}

/** What a revision tells devices to run: the version and how to fetch it. */
export interface AgentRelease {
  version: string;
  /** Per architecture as devices report it (`amd64`, `arm64`). */
  bundles: Record<string, AgentBundleFile>;
  /** The agent image by digest, for agents that run as a container. */
  image?: string;
  healthTimeout?: string;
}

/** A target's settings, as `agent.upgrade` stores them. */
export interface AgentTargetSpec {
  name: string;
  scheduling: Scheduling;
  release: AgentRelease;
  rollout?: RolloutPolicy;
}

export interface StoredAgentTarget extends AgentTargetSpec {
  /** Its newest revision. */
  revision: number;
  createdAt: string;
  updatedAt: string;
}

/** One revision as it was stored: what devices assigned it must run. */
export interface StoredAgentRevision {
  revision: number;
  /** The target it belongs to (it may have been deleted since). */
  name: string;
  release: AgentRelease;
  createdAt: string;
}

export interface AgentTargetStore {
  list(): Promise<StoredAgentTarget[]>;
  get(name: string): Promise<StoredAgentTarget | undefined>;
  /**
   * Stores `spec` as the target's new revision (making the target if missing) and returns
   * it. When it equals the stored target (same scheduling, release and rollout), nothing is
   * written and `changed` is false, unless `evenIfUnchanged`.
   */
  put(spec: AgentTargetSpec, options?: { evenIfUnchanged?: boolean }): Promise<{ target: StoredAgentTarget; changed: boolean }>;
  /** Any revision ever stored, of any target, deleted ones included. */
  revision(revision: number): Promise<StoredAgentRevision | undefined>;
  /** The target's newest revision older than `revision`, if there is one. */
  previousRevision(name: string, revision: number): Promise<number | undefined>;
  /** Deletes the target (its revisions stay, for devices still assigned one); false when there was none. */
  delete(name: string): Promise<boolean>;
}

/** The rollout store's key for a target's rollout: never an app name, which cannot hold '/'. */
export function agentRolloutKey(name: string): string {
  return `agent/${name}`;
}
