/**
 * The Logs tab: a device's stored lines (`logs.query`) for a time range and
 * app, and with `Live` on the follow stream, which sends that backlog and
 * then every line as the hub stores it. A range with an `Until` has an end,
 * so it is one query and never followed (the hub refuses `until` on a
 * stream); a reconnect asks only for lines after
 * the last one held (`afterId`). Lines arrive in bursts of thousands, so they
 * are queued and drawn at most ten times a second.
 */
import { memo } from 'preact/compat';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { FOLLOW_EVENT, type LogRecord } from '../../../../shared/telemetry-api.js';
import { ErrorNote, Options } from '../components.js';
import { useFollow } from '../hooks.js';
import { useSession } from '../session.js';
import { appendLines, filterLines, type LogRange, logRangeParams, MAX_LOG_LINES, sinceParam, splitMatches } from './log-buffer.js';

/** Without a `Since`, the newest this many lines. */
const DEFAULT_TAIL = 500;
const DRAW_EVERY_MS = 100;
/** Drawing waits this many times as long as the last drawing took, so a busy page spends at most a fifth of its time on lines. */
const DRAW_BACKOFF = 4;
const DRAW_AT_MOST_EVERY_MS = 1000;

export function LogsTab({ id, apps }: { id: string; apps: readonly string[] }) {
  const { api } = useSession();
  const [sinceText, setSinceText] = useState('');
  const [untilText, setUntilText] = useState('');
  const [app, setApp] = useState('');
  const [live, setLive] = useState(true);
  const [search, setSearch] = useState('');
  const [lines, setLines] = useState<LogRecord[]>([]);
  const [error, setError] = useState<unknown>();
  const since = sinceParam(sinceText);
  const until = sinceParam(untilText);
  // Live only up to now: with an end set (or one that is not a time yet) nothing is followed.
  const following = live && until === '';
  // The range the held lines belong to; a new range starts over.
  const range = `${since ?? ''}|${until ?? ''}|${app}`;
  const held = useRef<LogRecord[]>([]);
  const queue = useRef<LogRecord[]>([]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>();
  const drawStarted = useRef(0);
  const lastDrawMs = useRef(0);

  // Dropped at once, not in an effect: the follow stream of the new range asks for its cursor while it mounts.
  const heldRange = useRef(range);
  if (heldRange.current !== range) {
    heldRange.current = range;
    held.current = [];
    queue.current = [];
  }

  /**
   * Lines for `forRange`; dropped when the range has changed since they were
   * asked for: a follow stream being closed can still deliver a line after
   * the new range's held lines were reset, and an ended range must not show
   * one stamped after its end.
   */
  const add = (incoming: readonly LogRecord[], forRange: string) => {
    if (forRange !== heldRange.current) return;
    queue.current.push(...incoming);
    timer.current ??= setTimeout(
      () => {
        timer.current = undefined;
        const next = appendLines(held.current, queue.current);
        queue.current = [];
        if (next !== held.current) {
          held.current = next;
          drawStarted.current = performance.now();
          setLines(next);
        }
      },
      Math.min(DRAW_AT_MOST_EVERY_MS, Math.max(DRAW_EVERY_MS, lastDrawMs.current * DRAW_BACKOFF)),
    );
  };
  useEffect(() => () => clearTimeout(timer.current), []);

  useEffect(() => setLines(held.current), [range]);

  // Without Live, or with an end: one query for the range.
  useEffect(() => {
    if (following || since === undefined || until === undefined) return;
    let current = true;
    api.call('logs.query', { device: id, ...logRangeParams({ since, until, app }, DEFAULT_TAIL) }).then(
      (result) => {
        if (!current) return;
        setError(undefined);
        add(result.lines, range);
      },
      (err: unknown) => current && setError(err),
    );
    return () => {
      current = false;
    };
  }, [api, id, range, following]);

  return (
    <section class="logs-tab">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <div class="field grow">
          <label for="log-search">Search</label>
          <input id="log-search" type="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        </div>
        <TimeField
          id="log-since"
          label="Since"
          placeholder="10m, 2h or 2026-01-31 08:00"
          title={`Empty: the newest ${DEFAULT_TAIL} lines`}
          text={sinceText}
          valid={since !== undefined}
          onChange={setSinceText}
        />
        <TimeField
          id="log-until"
          label="Until"
          placeholder="1h, 30m or 2026-01-31 09:00"
          title="Empty: up to now, and Live can follow new lines"
          text={untilText}
          valid={until !== undefined}
          onChange={setUntilText}
        />
        <div class="field">
          <label for="log-app">App</label>
          <select id="log-app" value={app} onChange={(e) => setApp((e.target as HTMLSelectElement).value)}>
            <option value="">All apps</option>
            <Options values={apps} />
          </select>
        </div>
        <label class="check" title={until === '' ? undefined : 'A range with an Until has an end: clear it to follow new lines'}>
          <input
            type="checkbox"
            checked={following}
            disabled={until !== ''}
            onChange={(e) => setLive((e.target as HTMLInputElement).checked)}
          />{' '}
          Live
        </label>
      </form>
      {following && since !== undefined && (
        <Follow
          key={range}
          id={id}
          range={{ since, until: '', app }}
          after={() => held.current.at(-1)?.id}
          onLines={(incoming) => add(incoming, range)}
          onError={setError}
        />
      )}
      {error !== undefined && <ErrorNote error={error} />}
      <LogLines
        lines={lines}
        search={search}
        newest={sinceText.trim() === ''}
        onDrawn={() => {
          if (drawStarted.current > 0) lastDrawMs.current = performance.now() - drawStarted.current;
          drawStarted.current = 0;
        }}
      />
    </section>
  );
}

/** The follow stream while it is mounted; says whether it is live. */
function Follow(props: {
  id: string;
  range: LogRange;
  after: () => number | undefined;
  onLines: (lines: LogRecord[]) => void;
  onError: (error: unknown) => void;
}) {
  const state = useFollow(
    () => {
      const after = props.after();
      const query = new URLSearchParams({ follow: 'true' });
      const params =
        after === undefined
          ? logRangeParams(props.range, DEFAULT_TAIL)
          : { afterId: after, ...(props.range.app ? { app: props.range.app } : {}) };
      for (const [key, value] of Object.entries(params)) query.set(key, String(value));
      return `/api/v1/devices/${encodeURIComponent(props.id)}/logs?${query}`;
    },
    (event) => {
      if (event.event !== FOLLOW_EVENT.logs) return;
      props.onError(undefined);
      props.onLines([JSON.parse(event.data) as LogRecord]);
    },
    [props.id],
  );
  return (
    <p class="help follow-state" role="status">
      {state === 'live' ? 'Live: new lines appear as the device sends them.' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
    </p>
  );
}

/** The lines, kept scrolled to the newest while the reader is at the bottom, and left alone once they scroll up. */
function LogLines(props: { lines: readonly LogRecord[]; search: string; newest: boolean; onDrawn: () => void }) {
  const { lines, search, newest } = props;
  const box = useRef<HTMLElement>(null);
  const atBottom = useRef(true);
  const shown = filterLines(lines, search);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
    props.onDrawn();
  });
  return (
    <>
      <p class="help">
        {shown.length === lines.length ? `${lines.length} lines` : `${shown.length} of ${lines.length} lines match`}
        {newest ? ` (from the newest ${DEFAULT_TAIL} on)` : ''}
        {lines.length >= MAX_LOG_LINES ? ` (the newest ${MAX_LOG_LINES} are kept)` : ''}
      </p>
      <section
        class="logs"
        aria-label="Log lines"
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling pane must take the focus so keyboard users can scroll it.
        tabIndex={0}
        ref={box}
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {shown.length === 0 && <p class="empty">{lines.length === 0 ? 'No lines in this range yet.' : 'No line matches.'}</p>}
        {shown.map((l) => (
          <LogLine key={l.id} line={l} search={search} />
        ))}
      </section>
    </>
  );
}

/** A stored line never changes: redrawn only when the search does, so thousands of held lines cost nothing per new one. */
const LogLine = memo(function LogLine({ line: l, search }: { line: LogRecord; search: string }) {
  return (
    <div class={`line ${l.stream}`} data-log-id={l.id}>
      <time dateTime={l.ts}>{l.ts.slice(11, 19)}</time>{' '}
      <span class="source">
        {l.app}/{l.container}
      </span>
      {l.stream === 'stderr' && <span class="stream">stderr</span>} <Highlighted text={l.line} search={search} />
    </div>
  );
});

function Highlighted({ text, search }: { text: string; search: string }) {
  const pieces = splitMatches(text, search);
  if (pieces.length === 1) return <span class="text">{text}</span>;
  return <span class="text">{pieces.map((piece, i) => (i % 2 === 1 ? <mark key={i}>{piece}</mark> : piece))}</span>;
}

/** One end of the time range: a duration back from now or a date and time, marked invalid until it reads as one. */
function TimeField(props: {
  id: string;
  label: string;
  placeholder: string;
  title: string;
  text: string;
  valid: boolean;
  onChange: (text: string) => void;
}) {
  const help = `${props.id}-help`;
  return (
    <div class={`field${props.valid ? '' : ' invalid'}`}>
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        placeholder={props.placeholder}
        value={props.text}
        aria-describedby={props.valid ? undefined : help}
        title={props.title}
        aria-invalid={!props.valid}
        onChange={(e) => props.onChange((e.target as HTMLInputElement).value)}
      />
      {!props.valid && (
        <small id={help} class="error">
          A duration (10m, 2h, 1d) or a date and time
        </small>
      )}
    </div>
  );
}
