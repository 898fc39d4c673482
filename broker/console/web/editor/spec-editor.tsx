/**
 * The spec editor (`#/apply`, an app's Edit tab): a monospace textarea with a
 * line-number gutter, and Apply, which sends `apps.apply` with the parsed
 * YAML. A syntax error is shown at its line before anything is sent; the
 * hub's validation issues (400 `invalid_spec`, one per field) are each marked
 * in the gutter at the line of the field they name and listed under the
 * editor, where choosing one puts the cursor on that line. The hub stores
 * nothing from an invalid spec, so the editor sends nothing else to undo.
 *
 * A plain textarea rather than a code editor library: it keeps the browser's
 * own keyboard handling, undo and screen-reader support and adds nothing to
 * the bundle; the gutter beside it only has to share its line height and
 * scroll position.
 */
import type { ComponentChildren } from 'preact';
import { useId, useMemo, useRef, useState } from 'preact/hooks';
import type { ApplyResult } from '../../../../shared/api/results.js';
import { ApiCallError } from '../api.js';
import { ErrorNote } from '../components.js';
import { useConfirm } from '../confirm.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { loadYamlTools, useYamlTools } from './use-yaml.js';
import type { LineIssue } from './yaml-lines.js';

/** The textarea's line height in px: the gutter's numbers line up with the text only if both use it. */
const LINE_PX = 20;

type Outcome =
  | { kind: 'none' }
  | { kind: 'syntax'; issues: LineIssue[] }
  | { kind: 'invalid'; issues: LineIssue[] }
  | { kind: 'failed'; error: unknown }
  | { kind: 'applied'; result: ApplyResult };

export function SpecEditor(props: {
  initialSpec?: unknown;
  initialText?: string;
  intro?: ComponentChildren;
  /** The app being edited: a spec that names another is applied only once confirmed (it changes that app, not this one). */
  appName?: string;
}) {
  const { api } = useSession();
  const { confirm, dialog } = useConfirm();
  const { tools, error: loadError } = useYamlTools();
  const [edited, setEdited] = useState<string | undefined>(undefined);
  const [outcome, setOutcome] = useState<Outcome>({ kind: 'none' });
  const [busy, setBusy] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const id = useId();
  const initial = useMemo(
    () => props.initialText ?? (tools && props.initialSpec !== undefined ? tools.specToText(props.initialSpec) : undefined),
    [tools, props.initialSpec, props.initialText],
  );
  const text = edited ?? initial ?? '';
  const issues = outcome.kind === 'syntax' || outcome.kind === 'invalid' ? outcome.issues : [];
  /** Each marked line's messages (several issues can name fields on one line). */
  const marked = useMemo(() => {
    const byLine = new Map<number, string[]>();
    for (const issue of issues) byLine.set(issue.line, [...(byLine.get(issue.line) ?? []), issue.message]);
    return byLine;
  }, [issues]);
  const lineCount = Math.max(1, text.split('\n').length);

  const apply = async () => {
    setBusy(true);
    try {
      const yaml = await loadYamlTools();
      const parsed = yaml.parseSpecText(text);
      if (!parsed.ok) {
        setOutcome({ kind: 'syntax', issues: parsed.errors });
        return;
      }
      const named = (parsed.value as { name?: unknown } | null)?.name;
      if (props.appName !== undefined && typeof named === 'string' && named !== props.appName) {
        const goOn = await confirm({
          title: `Apply to app ${named}?`,
          message: `This spec names ${named}, not ${props.appName}: applying it creates or changes ${named}, and ${props.appName} stays as it is.`,
          confirmLabel: `Apply to ${named}`,
        });
        if (!goOn) return;
      }
      const result = await api.call('apps.apply', { spec: parsed.value });
      setOutcome({ kind: 'applied', result });
    } catch (err) {
      if (err instanceof ApiCallError && err.issues.length > 0) {
        const yaml = await loadYamlTools();
        setOutcome({ kind: 'invalid', issues: yaml.placeIssues(text, err.issues) });
      } else {
        setOutcome({ kind: 'failed', error: err });
      }
    } finally {
      setBusy(false);
    }
  };

  /** Puts the cursor at the start of `line` and scrolls it into view. */
  const goToLine = (line: number) => {
    const textarea = area.current;
    if (!textarea) return;
    const lines = text.split('\n');
    const offset = lines.slice(0, line - 1).reduce((sum, l) => sum + l.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(offset, offset + (lines[line - 1]?.length ?? 0));
    textarea.scrollTop = Math.max(0, (line - 4) * LINE_PX);
  };

  if (loadError) return <ErrorNote error={loadError} />;
  const issuesId = `${id}-issues`;
  return (
    <>
      {/* Outside the form: the dialog has a form of its own, and forms do not nest. */}
      {dialog}
      <form
        class="spec-editor"
        onSubmit={(event) => {
          event.preventDefault();
          void apply();
        }}
      >
        {props.intro}
        <label for={id}>Spec (YAML)</label>
        <div class={`editor${issues.length > 0 ? ' invalid' : ''}`} style={{ '--line': `${LINE_PX}px` }}>
          <div class="gutter" ref={gutter} aria-hidden="true">
            {Array.from({ length: lineCount }, (_, i) => {
              const messages = marked.get(i + 1);
              return (
                <div
                  key={i}
                  class={messages ? 'marked' : undefined}
                  data-issue-line={messages ? i + 1 : undefined}
                  title={messages?.join('\n')}
                >
                  {i + 1}
                </div>
              );
            })}
          </div>
          <textarea
            id={id}
            ref={area}
            value={text}
            disabled={initial === undefined && edited === undefined}
            spellcheck={false}
            autocapitalize="off"
            autocomplete="off"
            wrap="off"
            rows={24}
            aria-invalid={issues.length > 0 || undefined}
            aria-describedby={issues.length > 0 ? issuesId : undefined}
            onInput={(event) => setEdited((event.currentTarget as HTMLTextAreaElement).value)}
            onScroll={(event) => {
              if (gutter.current) gutter.current.scrollTop = (event.currentTarget as HTMLTextAreaElement).scrollTop;
            }}
            onKeyDown={(event) => {
              // Ctrl/Cmd+Enter applies from inside the text, as in most editors.
              if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
                event.preventDefault();
                void apply();
              }
            }}
          />
        </div>
        <div class="toolbar editor-actions">
          <button type="submit" disabled={busy || !tools} aria-busy={busy || undefined}>
            Apply
          </button>
          <small class="help">Ctrl+Enter applies. YAML or JSON.</small>
        </div>
        <Outcome outcome={outcome} issuesId={issuesId} goToLine={goToLine} />
      </form>
    </>
  );
}

function Outcome(props: { outcome: Outcome; issuesId: string; goToLine: (line: number) => void }) {
  const { outcome } = props;
  switch (outcome.kind) {
    case 'none':
      return null;
    case 'failed':
      return <ErrorNote error={outcome.error} />;
    case 'applied': {
      const { name, revision, changed } = outcome.result;
      return (
        <p class="notice" role="status">
          {changed
            ? `Applied: ${name} is at revision ${revision}. `
            : `Nothing changed (changed: false): ${name} already runs this spec as revision ${revision}. `}
          <a href={href(['apps', name, 'rollout'])}>Rollout of {name}</a> · <a href={href(['apps', name])}>{name}</a>
        </p>
      );
    }
    default:
      return (
        <div id={props.issuesId} class="issues">
          <p class="error">
            {outcome.kind === 'syntax'
              ? 'The YAML does not parse; nothing was sent.'
              : `The hub refused the spec and stored nothing (${outcome.issues.length === 1 ? '1 issue' : `${outcome.issues.length} issues`}):`}
          </p>
          <ul role="alert">
            {outcome.issues.map((issue, i) => (
              <li key={i} data-path={issue.pointer}>
                {issue.path && <code>{issue.path}</code>} {issue.message}{' '}
                <button type="button" class="link" onClick={() => props.goToLine(issue.line)}>
                  (line {issue.line})
                </button>
              </li>
            ))}
          </ul>
        </div>
      );
  }
}
