/**
 * Where the console is: the part of the address after `#`, so every view has
 * an address to bookmark and share, and the hub serves one page for all of
 * them (`/` and `/console/`).
 *
 *   #/                       the fleet
 *   #/devices/ID[/TAB]       a device (TAB: overview, logs, metrics, events, terminal)
 *   #/apps                   apps
 *   #/apps/NAME[/TAB]        an app (TAB: overview, revisions, rollout, edit)
 *   #/apply                  a new app in the editor
 *   #/admin[/TAB]            tokens, serviceaccounts, secrets, devices
 *   #/events                 the fleet's events
 *
 * A view may keep its filters after `?` (`#/?l=site%3Droof&q=gw`), so a
 * filtered view can be shared; the query does not change which view it is.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { view: 'fleet' }
  | { view: 'device'; id: string; tab: string }
  | { view: 'apps' }
  | { view: 'app'; name: string; tab: string }
  | { view: 'apply' }
  | { view: 'admin'; tab: string }
  | { view: 'events' }
  | { view: 'not-found'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/\?.*$/, '') || '/';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second, third] = parts;
  if (parts.length === 0) return { view: 'fleet' };
  if (first === 'devices' && second) return { view: 'device', id: second, tab: third ?? 'overview' };
  if (first === 'apps' && second) return { view: 'app', name: second, tab: third ?? 'overview' };
  if (first === 'apps') return { view: 'apps' };
  if (first === 'apply') return { view: 'apply' };
  if (first === 'admin') return { view: 'admin', tab: second ?? 'tokens' };
  if (first === 'events') return { view: 'events' };
  return { view: 'not-found', path };
}

/** The address of a view, for links: `href(['devices', id, 'logs'])`. */
export function href(parts: readonly string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

/** The part of the address after `?`: a view's filters. */
export function routeQuery(hash: string = location.hash): URLSearchParams {
  const at = hash.indexOf('?');
  return new URLSearchParams(at === -1 ? '' : hash.slice(at + 1));
}

/**
 * Writes a view's filters into the address in place (no history entry for
 * each keystroke, and no `hashchange`, so the view is not routed again).
 * Empty values are left out.
 */
export function replaceRouteQuery(values: Record<string, string>): void {
  const query = new URLSearchParams(Object.entries(values).filter(([, value]) => value !== ''));
  const path = location.hash.replace(/\?.*$/, '') || '#/';
  const text = query.toString();
  history.replaceState(history.state, '', `${path}${text ? `?${text}` : ''}`);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}
