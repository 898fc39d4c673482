/**
 * The PostgreSQL engine of AgentTargetStore. Replicas may put targets at the same moment: each put
 * first locks the one row of agent_revision_counter (FOR UPDATE) and holds it to its commit, so
 * puts run one after another across every replica. That gives each its own number, makes a higher
 * revision always the one committed later (what "the target set last wins" needs), and lets the
 * unchanged check compare against the target as the put will replace it.
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
import type { PgDatabase } from './database.js';

const TARGET_COLUMNS = 'name, revision, scheduling, release, rollout, created_at, updated_at';

export class PgAgentTargetStore implements AgentTargetStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(): Promise<StoredAgentTarget[]> {
    return (await this.db.query<AgentTargetRow>(`SELECT ${TARGET_COLUMNS} FROM agent_targets ORDER BY name`)).map(agentTargetFromRow);
  }

  async get(name: string): Promise<StoredAgentTarget | undefined> {
    const [row] = await this.db.query<AgentTargetRow>(`SELECT ${TARGET_COLUMNS} FROM agent_targets WHERE name = $1`, [name]);
    return row ? agentTargetFromRow(row) : undefined;
  }

  async put(spec: AgentTargetSpec, { evenIfUnchanged = false } = {}): Promise<{ target: StoredAgentTarget; changed: boolean }> {
    const columns = agentTargetColumns(spec);
    return this.db.transaction(async (tx) => {
      // The first put ever makes the row; one made meanwhile by another replica's first put is waited for.
      await tx.query('INSERT INTO agent_revision_counter (id, last_revision) VALUES (1, 0) ON CONFLICT (id) DO NOTHING');
      const [counter] = await tx.query<{ last_revision: number }>(
        'SELECT last_revision FROM agent_revision_counter WHERE id = 1 FOR UPDATE',
      );
      const [current] = await tx.query<AgentTargetRow>(`SELECT ${TARGET_COLUMNS} FROM agent_targets WHERE name = $1`, [spec.name]);
      if (current && sameSettings(current, columns) && !evenIfUnchanged) return { target: agentTargetFromRow(current), changed: false };
      const revision = counter!.last_revision + 1;
      const at = this.now().toISOString();
      await tx.query('UPDATE agent_revision_counter SET last_revision = $1 WHERE id = 1', [revision]);
      await tx.query('INSERT INTO agent_target_revisions (revision, name, release, created_at) VALUES ($1, $2, $3, $4)', [
        revision,
        spec.name,
        columns.release,
        at,
      ]);
      const [row] = await tx.query<AgentTargetRow>(
        `INSERT INTO agent_targets (${TARGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (name) DO UPDATE SET revision = EXCLUDED.revision, scheduling = EXCLUDED.scheduling,
           release = EXCLUDED.release, rollout = EXCLUDED.rollout, updated_at = EXCLUDED.updated_at
         RETURNING ${TARGET_COLUMNS}`,
        [spec.name, revision, columns.scheduling, columns.release, columns.rollout, at],
      );
      return { target: agentTargetFromRow(row!), changed: true };
    });
  }

  async revision(revision: number): Promise<StoredAgentRevision | undefined> {
    const [row] = await this.db.query<AgentRevisionRow>(
      'SELECT revision, name, release, created_at FROM agent_target_revisions WHERE revision = $1',
      [revision],
    );
    return row ? agentRevisionFromRow(row) : undefined;
  }

  async previousRevision(name: string, revision: number): Promise<number | undefined> {
    const [row] = await this.db.query<{ revision: number | null }>(
      'SELECT max(revision) AS revision FROM agent_target_revisions WHERE name = $1 AND revision < $2',
      [name, revision],
    );
    return row?.revision ?? undefined;
  }

  async delete(name: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM agent_targets WHERE name = $1 RETURNING name', [name])).length > 0;
  }
}
