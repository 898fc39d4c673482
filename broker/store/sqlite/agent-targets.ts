/**
 * The SQLite engine of AgentTargetStore (hub.db). A put reads the target, compares, takes the next
 * number from agent_revision_counter and writes the revision and the target in one IMMEDIATE
 * transaction: SQLite's write lock is held from the first read to the commit, so two connections
 * to the file never take the same number, and the target compared is the one replaced.
 */
import {
  type AgentRevisionRow,
  type AgentTargetRow,
  agentRevisionFromRow,
  agentTargetColumns,
  agentTargetFromRow,
  sameSettings,
} from '../agent-target-rows.js';
import type { AgentTargetSpec, AgentTargetStore, StoredAgentRevision, StoredAgentTarget } from '../agent-targets.js';
import type { Db } from './db.js';

const TARGET_COLUMNS = 'name, revision, scheduling, release, rollout, created_at, updated_at';

export class SqliteAgentTargetStore implements AgentTargetStore {
  private readonly selectAll;
  private readonly selectOne;
  private readonly nextRevision;
  private readonly insertRevision;
  private readonly upsertTarget;
  private readonly selectRevision;
  private readonly selectPrevious;
  private readonly deleteTarget;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectAll = db.prepare<[], AgentTargetRow>(`SELECT ${TARGET_COLUMNS} FROM agent_targets ORDER BY name`);
    this.selectOne = db.prepare<[string], AgentTargetRow>(`SELECT ${TARGET_COLUMNS} FROM agent_targets WHERE name = ?`);
    this.nextRevision = db.prepare<[], { last_revision: number }>(
      `INSERT INTO agent_revision_counter (id, last_revision) VALUES (1, 1)
       ON CONFLICT(id) DO UPDATE SET last_revision = last_revision + 1 RETURNING last_revision`,
    );
    this.insertRevision = db.prepare('INSERT INTO agent_target_revisions (revision, name, release, created_at) VALUES (?, ?, ?, ?)');
    this.upsertTarget = db.prepare(
      `INSERT INTO agent_targets (${TARGET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET revision = excluded.revision, scheduling = excluded.scheduling,
         release = excluded.release, rollout = excluded.rollout, updated_at = excluded.updated_at`,
    );
    this.selectRevision = db.prepare<[number], AgentRevisionRow>(
      'SELECT revision, name, release, created_at FROM agent_target_revisions WHERE revision = ?',
    );
    this.selectPrevious = db.prepare<[string, number], { revision: number | null }>(
      'SELECT MAX(revision) AS revision FROM agent_target_revisions WHERE name = ? AND revision < ?',
    );
    this.deleteTarget = db.prepare('DELETE FROM agent_targets WHERE name = ?');
  }

  async list(): Promise<StoredAgentTarget[]> {
    return this.selectAll.all().map(agentTargetFromRow);
  }

  async get(name: string): Promise<StoredAgentTarget | undefined> {
    const row = this.selectOne.get(name);
    return row ? agentTargetFromRow(row) : undefined;
  }

  async put(spec: AgentTargetSpec, { evenIfUnchanged = false } = {}): Promise<{ target: StoredAgentTarget; changed: boolean }> {
    const columns = agentTargetColumns(spec);
    return this.db
      .transaction(() => {
        const current = this.selectOne.get(spec.name);
        if (current && sameSettings(current, columns) && !evenIfUnchanged) return { target: agentTargetFromRow(current), changed: false };
        const revision = this.nextRevision.get()!.last_revision;
        const at = this.now().toISOString();
        this.insertRevision.run(revision, spec.name, columns.release, at);
        this.upsertTarget.run(spec.name, revision, columns.scheduling, columns.release, columns.rollout, at, at);
        return { target: agentTargetFromRow(this.selectOne.get(spec.name)!), changed: true };
      })
      .immediate();
  }

  async revision(revision: number): Promise<StoredAgentRevision | undefined> {
    const row = this.selectRevision.get(revision);
    return row ? agentRevisionFromRow(row) : undefined;
  }

  async previousRevision(name: string, revision: number): Promise<number | undefined> {
    return this.selectPrevious.get(name, revision)?.revision ?? undefined;
  }

  async delete(name: string): Promise<boolean> {
    return this.deleteTarget.run(name).changes > 0;
  }
}
