/**
 * What the agent remembers about updates, beyond what Docker labels say:
 * per app, the last version that passed its health gate (with its full specs,
 * so a rollback can recreate it), and a revision that failed its gate and
 * must not be retried until a newer one arrives.
 */
import type { ContainerSpec } from '../../shared/index.js';

export interface CommittedContainer {
  hash: string;
  spec: ContainerSpec;
}

export interface AppRecord {
  committed?: { revision: number; containers: Record<string, CommittedContainer> };
  rolledBack?: { revision: number; reason: string };
}

export type UpdateRecords = ReadonlyMap<string, AppRecord>;

export interface RecordWriter {
  commit(app: string, revision: number, container: string, committed: CommittedContainer): void;
  markRolledBack(app: string, revision: number, reason: string): void;
}

/** An in-memory record set with a persistence hook (the agent's LocalStore). */
export class Records implements RecordWriter {
  private readonly apps: Map<string, AppRecord>;

  constructor(
    initial: Record<string, AppRecord> = {},
    private readonly persist: (apps: Record<string, AppRecord>) => void = () => undefined,
  ) {
    this.apps = new Map(Object.entries(initial));
  }

  get view(): UpdateRecords {
    return this.apps;
  }

  commit(app: string, revision: number, container: string, committed: CommittedContainer): void {
    const record = this.apps.get(app) ?? {};
    const containers = record.committed?.revision === revision ? { ...record.committed.containers } : { ...record.committed?.containers };
    containers[container] = committed;
    this.apps.set(app, { ...record, committed: { revision, containers } });
    this.save();
  }

  markRolledBack(app: string, revision: number, reason: string): void {
    this.apps.set(app, { ...this.apps.get(app), rolledBack: { revision, reason } });
    this.save();
  }

  /** Forgets apps no longer on the device, so the file does not grow forever. */
  retain(apps: ReadonlySet<string>): void {
    let changed = false;
    for (const name of this.apps.keys()) {
      if (!apps.has(name)) changed = this.apps.delete(name) || changed;
    }
    if (changed) this.save();
  }

  private save(): void {
    this.persist(Object.fromEntries(this.apps));
  }
}
