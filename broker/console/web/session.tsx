/**
 * Who is logged in: the API key (session storage, so it goes when the tab
 * closes and is never written to disk by the console), the caller's name
 * and role as the hub tells them (`GET /api/v1/whoami`), and the API client
 * that sends the key. Views ask `can('operator')` before offering a control;
 * the hub refuses it anyway.
 */
import { type ComponentChildren, createContext } from 'preact';
import { useCallback, useContext, useEffect, useMemo, useState } from 'preact/hooks';
import { ApiCallError, ConsoleApi } from './api.js';

export type Role = 'viewer' | 'operator' | 'admin';
const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

/** `GET /api/v1/whoami`. */
export interface Whoami {
  name: string;
  role: Role;
}

export interface Session {
  api: ConsoleApi;
  who: Whoami;
  /** Whether the caller holds `role` (each role may do all the one before it may). */
  can(role: Role): boolean;
  logout(): void;
}

export const KEY_STORAGE = 'flotilla.apiKey';

const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a logged-in console');
  return session;
}

/** Logs in with a key: the hub's answer to whoami, or the reason it refused. */
export async function login(key: string, onUnauthorized: () => void): Promise<{ api: ConsoleApi; who: Whoami }> {
  const api = new ConsoleApi(key, onUnauthorized);
  const who = (await api.request('GET', '/api/v1/whoami')) as Whoami;
  return { api, who };
}

/** `GET /console/hub.json`: asked first, since a whoami without a key would be a 401 on most hubs. */
async function keyRequired(): Promise<boolean> {
  const response = await fetch('/console/hub.json', { cache: 'no-store' });
  if (!response.ok) return true;
  return ((await response.json()) as { keyRequired?: unknown }).keyRequired !== false;
}

type State = { phase: 'checking' } | { phase: 'out'; error?: string } | { phase: 'in'; api: ConsoleApi; who: Whoami };

export function SessionProvider(props: {
  children: ComponentChildren;
  loginForm: (submit: (key: string) => Promise<void>, error?: string) => ComponentChildren;
}) {
  const [state, setState] = useState<State>({ phase: 'checking' });
  const logout = useCallback((error?: string) => {
    sessionStorage.removeItem(KEY_STORAGE);
    setState({ phase: 'out', ...(error ? { error } : {}) });
  }, []);
  const submit = useCallback(
    async (key: string) => {
      try {
        const { api, who } = await login(key, () => logout('The hub no longer accepts this key; log in again.'));
        sessionStorage.setItem(KEY_STORAGE, key);
        setState({ phase: 'in', api, who });
      } catch (err) {
        const refused = err instanceof ApiCallError && err.status === 401;
        logout(refused ? 'The hub refused this key.' : (err as Error).message);
      }
    },
    [logout],
  );
  // At load: the key this tab logged in with; else, on a hub that lets anonymous clients in
  // (on loopback, by default), no key at all; any other hub asks for one.
  useEffect(() => {
    const stored = sessionStorage.getItem(KEY_STORAGE);
    if (stored) return void submit(stored);
    keyRequired()
      .then((required) => (required ? undefined : login('', () => logout())))
      .then(
        (session) => setState(session ? { phase: 'in', ...session } : { phase: 'out' }),
        (err: Error) => setState({ phase: 'out', error: err.message }),
      );
  }, [submit, logout]);
  const session = useMemo<Session | undefined>(
    () =>
      state.phase === 'in'
        ? {
            api: state.api,
            who: state.who,
            can: (role) => ROLES.indexOf(state.who.role) >= ROLES.indexOf(role),
            logout: () => logout(),
          }
        : undefined,
    [state, logout],
  );
  if (state.phase === 'checking') return <p class="loading">Connecting to the hub…</p>;
  if (!session) return <>{props.loginForm(submit, state.phase === 'out' ? state.error : undefined)}</>;
  return <SessionContext.Provider value={session}>{props.children}</SessionContext.Provider>;
}
