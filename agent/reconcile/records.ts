/**
 * What the agent remembers about updates, beyond what Docker labels say:
 * per app, the last version that passed its health gate (with its full specs,
 * so a rollback can recreate it) and the images of the version before it; a
 * revision that failed its gate and must not be retried until a newer one
 * arrives; and which images the agent pulled, so it removes only its own.
 */
import type { ContainerSpec } from '../../shared/index.js';

export interface CommittedContainer {
  hash: string;
  spec: ContainerSpec;
}

export interface AppRecord {
  committed?: { revision: number; containers: Record<string, CommittedContainer> };
  /** Images of the previously committed revision: kept on disk for a fast rollback. */
  previousImages?: string[];
  rolledBack?: { revision: number; reason: string };
}

export interface PersistedRecords {
  apps: Record<string, AppRecord>;
  pulledImages: string[];
}

export type UpdateRecords = ReadonlyMap<string, AppRecord>;

export interface RecordWriter {
  commit(app: string, revision: number, container: string, committed: CommittedContainer): void;
  markRolledBack(app: string, revision: number, reason: string): void;
  notePulled(image: string): void;
  forgetImage(image: string): void;
}

/** The records in memory, written through to the agent's LocalStore on every change (changes are rare). */
export class Records implements RecordWriter {
  private readonly apps: Map<string, AppRecord>;
  private readonly pulled: Set<string>;

  constructor(
    initial: Partial<PersistedRecords> = {},
    private readonly persist: (records: PersistedRecords) => void = () => undefined,
  ) {
    this.apps = new Map(Object.entries(initial.apps ?? {}));
    this.pulled = new Set(initial.pulledImages ?? []);
  }

  get view(): UpdateRecords {
    return this.apps;
  }

  get pulledImages(): ReadonlySet<string> {
    return this.pulled;
  }

  commit(app: string, revision: number, container: string, committed: CommittedContainer): void {
    const record = this.apps.get(app) ?? {};
    const sameRevision = record.committed?.revision === revision;
    const previousImages = sameRevision
      ? record.previousImages
      : Object.values(record.committed?.containers ?? {}).map((c) => c.spec.image);
    const containers = { ...(sameRevision ? record.committed?.containers : {}), [container]: committed };
    this.apps.set(app, { ...record, committed: { revision, containers }, ...(previousImages?.length ? { previousImages } : {}) });
    this.save();
  }

  markRolledBack(app: string, revision: number, reason: string): void {
    this.apps.set(app, { ...this.apps.get(app), rolledBack: { revision, reason } });
    this.save();
  }

  notePulled(image: string): void {
    if (this.pulled.has(image)) return;
    this.pulled.add(image);
    this.save();
  }

  forgetImage(image: string): void {
    if (this.pulled.delete(image)) this.save();
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
    this.persist({ apps: Object.fromEntries(this.apps), pulledImages: [...this.pulled] });
  }
}
