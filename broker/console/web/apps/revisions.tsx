/**
 * An app's Revisions tab: every revision (`apps.history`), the line diff of
 * two revisions' specs chosen with From and To (each spec fetched once with
 * `apps.revision`), and, for operators, a Roll back on each older revision:
 * its spec becomes a new revision (history only grows).
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { AppHistory, AppRevision, RollbackResult } from '../../../../shared/api/results.js';
import { ACTIONS_COLUMN, Await, DataTable, ErrorNote, Field } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { useYamlTools, type YamlTools } from '../editor/use-yaml.js';
import { formatAgo, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { diffCounts, lineDiff } from './line-diff.js';

export function AppRevisions({ name }: { name: string }) {
  const { api } = useSession();
  const [history, reload] = useLoad(() => api.call('apps.history', { name }), [api, name]);
  const [rolledBack, setRolledBack] = useState<RollbackResult | null>(null);
  const rollBack = async (toRevision: number) => {
    const result = await api.call('apps.rollback', { name, toRevision });
    setRolledBack(result);
    reload();
  };
  return (
    <Await loaded={history}>
      {(value) => (
        <>
          {rolledBack && <RollbackNotice result={rolledBack} />}
          <RevisionTable history={value} onRollBack={rollBack} />
          <h2>Compare</h2>
          <RevisionDiff key={value.current} history={value} />
        </>
      )}
    </Await>
  );
}

function RollbackNotice({ result }: { result: RollbackResult }) {
  return (
    <p class="notice" role="status">
      {result.changed
        ? `Revision ${result.revision} made from revision ${result.rolledBackTo}; the app's devices are told to run it. `
        : `Nothing changed (changed: false): revision ${result.rolledBackTo}'s spec is already the current one. `}
      <a href={href(['apps', result.name, 'rollout'])}>Rollout</a>
    </p>
  );
}

function RevisionTable(props: { history: AppHistory; onRollBack: (revision: number) => Promise<void> }) {
  const { can } = useSession();
  const { history } = props;
  const operator = can('operator');
  const columns = [
    { label: 'Revision', class: 'num' },
    { label: 'Current', hidden: true },
    { label: 'Created', class: 'hide-narrow' },
    { label: 'Cause' },
    { label: 'Source', class: 'hide-narrow' },
    { label: 'Images', class: 'hide-narrow' },
    operator && ACTIONS_COLUMN,
  ];
  return (
    <DataTable label="Revisions" columns={columns} items={history.items}>
      {(item) => (
        <tr key={item.revision} data-revision={item.revision} aria-current={item.current ? 'true' : undefined}>
          <td class="num">{item.revision}</td>
          <td>{item.current && <span class="badge ok">current</span>}</td>
          <td class="hide-narrow" title={formatTime(item.createdAt)}>
            {formatAgo(item.createdAt)}
          </td>
          <td>{item.cause ?? '–'}</td>
          <td class="mono wrap hide-narrow">{item.source ?? '–'}</td>
          <td class="mono wrap hide-narrow">{item.images.join(', ')}</td>
          {operator && (
            <td class="actions">
              {!item.current && (
                <ConfirmButton
                  class="secondary"
                  confirm={{
                    title: `Roll back ${history.name} to revision ${item.revision}?`,
                    message: `Revision ${item.revision}'s spec becomes revision ${history.current + 1}, which rolls out to the app's devices like any apply.`,
                    confirmLabel: 'Roll back',
                  }}
                  onConfirm={() => props.onRollBack(item.revision)}
                />
              )}
            </td>
          )}
        </tr>
      )}
    </DataTable>
  );
}

/** From and To, and the diff between their specs. */
function RevisionDiff({ history }: { history: AppHistory }) {
  const revisions = history.items.map((item) => item.revision);
  const [to, setTo] = useState(history.current);
  const [from, setFrom] = useState(revisions.find((r) => r < history.current) ?? history.current);
  const specs = useRevisionSpecs(history.name, [from, to]);
  const { tools, error } = useYamlTools();
  return (
    <>
      <div class="toolbar">
        <RevisionSelect label="From" revisions={revisions} current={history.current} value={from} onValue={setFrom} />
        <RevisionSelect label="To" revisions={revisions} current={history.current} value={to} onValue={setTo} />
      </div>
      {error ? <ErrorNote error={error} /> : <DiffRegion from={from} to={to} specs={specs} tools={tools} />}
    </>
  );
}

function RevisionSelect(props: {
  label: string;
  revisions: number[];
  current: number;
  value: number;
  onValue: (revision: number) => void;
}) {
  return (
    <Field label={props.label}>
      {(id) => (
        <select id={id} value={props.value} onChange={(e) => props.onValue(Number(e.currentTarget.value))}>
          {props.revisions.map((revision) => (
            <option key={revision} value={revision}>
              {revision}
              {revision === props.current ? ' (current)' : ''}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

type SpecState = { state: 'loading' } | { state: 'ready'; value: AppRevision } | { state: 'failed'; error: Error };

/** The specs of the named revisions, each fetched once per view: a revision never changes. */
function useRevisionSpecs(name: string, wanted: readonly number[]): Map<number, SpecState> {
  const { api } = useSession();
  const [specs, setSpecs] = useState<Map<number, SpecState>>(() => new Map());
  const key = wanted.join(',');
  useEffect(() => {
    for (const revision of wanted) {
      if (specs.has(revision)) continue;
      const set = (state: SpecState) => setSpecs((old) => new Map(old).set(revision, state));
      set({ state: 'loading' });
      api.call('apps.revision', { name, revision }).then(
        (value) => set({ state: 'ready', value }),
        (error: Error) => set({ state: 'failed', error }),
      );
    }
  }, [api, name, key]);
  return specs;
}

function DiffRegion(props: { from: number; to: number; specs: Map<number, SpecState>; tools: YamlTools | undefined }) {
  const before = props.specs.get(props.from);
  const after = props.specs.get(props.to);
  const ready = props.tools && before?.state === 'ready' && after?.state === 'ready';
  const lines = useMemo(
    () =>
      ready && props.tools ? lineDiff(props.tools.specToText(before.value.spec), props.tools.specToText(after.value.spec)) : undefined,
    [ready, props.tools, before, after],
  );
  const failed = [before, after].find((s) => s?.state === 'failed');
  const counts = lines && diffCounts(lines);
  return (
    <section class="spec-diff" aria-label="Spec diff" aria-busy={!lines && !failed}>
      {failed?.state === 'failed' ? (
        <ErrorNote error={failed.error} />
      ) : !lines || !counts ? (
        <p class="loading">Loading the specs…</p>
      ) : (
        <>
          <p class="diff-summary">
            Revision {props.from} → {props.to}:{' '}
            {counts.added + counts.removed === 0
              ? 'the same spec'
              : `${counts.added} line${counts.added === 1 ? '' : 's'} added, ${counts.removed} removed`}
          </p>
          <pre class="diff">
            {lines.map((line, i) => (
              <span key={i} class={`diff-line ${line.kind}`} data-diff={line.kind}>
                <span class="diff-sign" aria-hidden="true">
                  {line.kind === 'added' ? '+' : line.kind === 'removed' ? '-' : ' '}
                </span>
                {line.kind !== 'same' && <span class="visually-hidden">{line.kind}: </span>}
                {line.text}
                {'\n'}
              </span>
            ))}
          </pre>
        </>
      )}
    </section>
  );
}
