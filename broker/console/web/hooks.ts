/** Loading and following data from the hub, the same way in every view. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { SseEvent } from '../../../shared/sse.js';
import { useSession } from './session.js';

export type Loaded<T> = { state: 'loading' } | { state: 'ready'; value: T } | { state: 'failed'; error: Error };

/**
 * Runs `load` now and whenever `deps` change (and on `reload()`), keeping the
 * last value shown while a reload runs so nothing jumps.
 */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): [Loaded<T>, () => void] {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' });
  const [generation, setGeneration] = useState(0);
  // The caller names what `load` depends on.
  useEffect(() => {
    let current = true;
    load().then(
      (value) => current && setLoaded({ state: 'ready', value }),
      (error: Error) => current && setLoaded({ state: 'failed', error }),
    );
    return () => {
      current = false;
    };
  }, [...deps, generation]);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  return [loaded, reload];
}

/** Calls `tick` every `ms` while the view is shown. */
export function useInterval(tick: () => void, ms: number): void {
  const saved = useRef(tick);
  saved.current = tick;
  useEffect(() => {
    const timer = setInterval(() => saved.current(), ms);
    return () => clearInterval(timer);
  }, [ms]);
}

export type FollowState = 'connecting' | 'live' | 'reconnecting';

/**
 * Follows a Server-Sent Events route while the view is shown, reconnecting
 * after a pause when the stream ends (the hub restarted, the network
 * dropped). `path(resume)` builds the address, so a reconnect can ask only
 * for what came after the last record (`afterId`).
 */
export function useFollow(path: () => string, onEvent: (event: SseEvent) => void, deps: readonly unknown[]): FollowState {
  const { api } = useSession();
  const [state, setState] = useState<FollowState>('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;
  // The caller names what `path` depends on.
  useEffect(() => {
    const abort = new AbortController();
    void (async () => {
      while (!abort.signal.aborted) {
        try {
          for await (const event of api.follow(path(), abort.signal)) {
            setState('live');
            handler.current(event);
          }
        } catch {
          // Reconnects below; an abort ends the loop.
        }
        if (abort.signal.aborted) return;
        setState('reconnecting');
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    })();
    return () => abort.abort();
  }, [api, ...deps]);
  return state;
}
