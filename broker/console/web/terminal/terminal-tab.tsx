/**
 * The Terminal tab (operators and admins): a shell on the device's host
 * (admins; the agent must allow it) or a command in an app's container, in
 * xterm.js over a remote-access session. xterm.js loads on first use, so no
 * other page pays for it. The terminal box keeps its size before, during and
 * after a session, so nothing around it moves.
 *
 * Keyboard: focus goes into the terminal when a session opens; a terminal
 * needs Tab itself, so Escape then Tab leaves it (and the buttons above stay
 * reachable with Shift+Tab the same way).
 */
import type { FitAddon } from '@xterm/addon-fit';
import type { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { DeviceView } from '../../../../shared/api/results.js';
import type { SessionRequest } from '../../../../shared/remote/requests.js';
import { useSession } from '../session.js';
import { BrowserSession, type SessionEnd } from './session-socket.js';

type Phase = { state: 'idle' } | { state: 'opening' } | { state: 'open'; what: string } | { state: 'ended'; end: SessionEnd };

let xtermModules: Promise<[typeof import('@xterm/xterm'), typeof import('@xterm/addon-fit')]> | undefined;
function loadXterm() {
  xtermModules ??= Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit')]);
  return xtermModules;
}

/** App containers as `app/container`, what an exec names. */
function containersOf(device: DeviceView | undefined): { app: string; container: string }[] {
  return (device?.apps ?? []).flatMap((app) => app.containers.map((c) => ({ app: app.name, container: c.name })));
}

export function TerminalTab({ id, device }: { id: string; device: DeviceView | undefined }) {
  const { api, can } = useSession();
  const [phase, setPhase] = useState<Phase>({ state: 'idle' });
  const [command, setCommand] = useState('sh');
  const [target, setTarget] = useState('');
  const box = useRef<HTMLElement>(null);
  const term = useRef<{ terminal: Terminal; fit: FitAddon; observer: ResizeObserver } | undefined>();
  const session = useRef<BrowserSession | undefined>();
  const lastRequest = useRef<SessionRequest | undefined>();
  const containers = containersOf(device);
  const chosen = containers.find((c) => `${c.app}/${c.container}` === target) ?? containers[0];

  useEffect(
    () => () => {
      session.current?.close();
      term.current?.observer.disconnect();
      term.current?.terminal.dispose();
    },
    [],
  );

  const start = async (request: SessionRequest) => {
    session.current?.close();
    lastRequest.current = request;
    setPhase({ state: 'opening' });
    let modules: Awaited<ReturnType<typeof loadXterm>>;
    try {
      modules = await loadXterm();
    } catch (err) {
      setPhase({ state: 'ended', end: { kind: 'ended', reason: `the terminal did not load: ${(err as Error).message}` } });
      return;
    }
    const view = terminalIn(modules, box.current!, term, session);
    view.terminal.reset();
    view.fit.fit();
    const what = request.kind === 'exec' ? `${request.command.join(' ')} in ${request.app}/${request.container ?? ''}` : 'host shell';
    const opened = new BrowserSession(
      id,
      { ...request, rows: view.terminal.rows, cols: view.terminal.cols } as SessionRequest,
      api.bearer,
      {
        onReady: (ready) => {
          setPhase({ state: 'open', what: `${what} (session ${ready.sessionId.slice(0, 8)})` });
          view.terminal.focus();
        },
        onOutput: (data, done) => view.terminal.write(data, done),
        onEnd: (end) => {
          if (session.current === opened) setPhase({ state: 'ended', end });
        },
      },
    );
    session.current = opened;
  };

  const busy = phase.state === 'opening' || phase.state === 'open';
  return (
    <section class="terminal-tab">
      <div class="toolbar terminal-controls">
        {can('admin') && (
          <button type="button" disabled={busy} onClick={() => void start({ kind: 'shell', tty: true })}>
            Open shell
          </button>
        )}
        <form
          class="exec-form"
          onSubmit={(e) => {
            e.preventDefault();
            const argv = command.trim().split(/\s+/).filter(Boolean);
            if (chosen && argv.length > 0)
              void start({ kind: 'exec', app: chosen.app, container: chosen.container, command: argv, tty: true, stdin: true });
          }}
        >
          <div class="field">
            <label for="exec-container">Container</label>
            <select
              id="exec-container"
              value={chosen ? `${chosen.app}/${chosen.container}` : ''}
              disabled={containers.length === 0}
              onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}
            >
              {containers.length === 0 && <option value="">No app containers</option>}
              {containers.map((c) => (
                <option key={`${c.app}/${c.container}`} value={`${c.app}/${c.container}`}>
                  {c.app}/{c.container}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="exec-command">Command</label>
            <input id="exec-command" value={command} onInput={(e) => setCommand((e.target as HTMLInputElement).value)} />
          </div>
          <button type="submit" disabled={busy || !chosen || command.trim() === ''}>
            Exec
          </button>
        </form>
        {busy && (
          <button type="button" class="secondary" onClick={() => session.current?.close()}>
            Close session
          </button>
        )}
        {phase.state === 'ended' && lastRequest.current && (
          <button type="button" class="secondary" onClick={() => void start(lastRequest.current!)}>
            Reconnect
          </button>
        )}
      </div>
      <p class="terminal-status" role="status">
        {statusText(phase)}
      </p>
      <section class="terminal-box" aria-label="Terminal" ref={box} />
      <p class="help">In the terminal, press Escape then Tab to move the focus out of it.</p>
    </section>
  );
}

function statusText(phase: Phase): string {
  switch (phase.state) {
    case 'idle':
      return 'No session. Open one above.';
    case 'opening':
      return 'Opening the session…';
    case 'open':
      return `Connected: ${phase.what}.`;
    case 'ended':
      return phase.end.kind === 'exit' ? `The command exited with code ${phase.end.code}.` : `The session ended: ${phase.end.reason}.`;
  }
}

/** The one xterm.js terminal of the tab, made on first use and fitted to its box as the box changes size. */
function terminalIn(
  [{ Terminal: XTerm }, { FitAddon: Fit }]: Awaited<ReturnType<typeof loadXterm>>,
  element: HTMLElement,
  holder: { current: { terminal: Terminal; fit: FitAddon; observer: ResizeObserver } | undefined },
  session: { current: BrowserSession | undefined },
) {
  if (holder.current) return holder.current;
  const terminal = new XTerm({ cursorBlink: true, convertEol: false, fontSize: 13, scrollback: 5000 });
  const fit = new Fit();
  terminal.loadAddon(fit);
  terminal.open(element);
  // Input and size go to whichever session is current.
  terminal.onData((text) => session.current?.input(text));
  terminal.onResize(({ rows, cols }) => session.current?.resize(rows, cols));
  let escaped = false;
  terminal.attachCustomKeyEventHandler((event) => {
    if (event.type !== 'keydown') return true;
    // Escape then Tab: let the browser move the focus on (xterm.js would send the Tab to the shell).
    if (event.key === 'Tab' && escaped) {
      escaped = false;
      return false;
    }
    escaped = event.key === 'Escape';
    return true;
  });
  const observer = new ResizeObserver(() => fit.fit());
  observer.observe(element);
  holder.current = { terminal, fit, observer };
  return holder.current;
}
