/** The console's frame: the login, the navigation, and the view the address names. */
import type { ComponentChildren } from 'preact';
import { LoginForm } from './login.js';
import { href, type Route, useRoute } from './router.js';
import { SessionProvider, useSession } from './session.js';
import { AdminView } from './views/admin.js';
import { AppView } from './views/app.js';
import { ApplyView } from './views/apply.js';
import { AppsView } from './views/apps.js';
import { DeviceView } from './views/device.js';
import { EventsView } from './views/events.js';
import { FleetView } from './views/fleet.js';

export function App() {
  return (
    <SessionProvider loginForm={(submit, error) => <LoginForm submit={submit} error={error} />}>
      <Shell />
    </SessionProvider>
  );
}

function Shell() {
  const route = useRoute();
  const { who, can, logout } = useSession();
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href([])}>
          Flotilla
        </a>
        <nav aria-label="Main">
          <NavLink route={route} to={[]} views={['fleet', 'device']}>
            Fleet
          </NavLink>
          <NavLink route={route} to={['apps']} views={['apps', 'app', 'apply']}>
            Apps
          </NavLink>
          <NavLink route={route} to={['events']} views={['events']}>
            Events
          </NavLink>
          {can('admin') && (
            <NavLink route={route} to={['admin']} views={['admin']}>
              Admin
            </NavLink>
          )}
        </nav>
        <span class="who" title={`role: ${who.role}`}>
          {who.name} · {who.role}
        </span>
        <button type="button" class="link" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <RouteView route={route} />
      </main>
    </>
  );
}

function NavLink(props: { route: Route; to: string[]; views: Route['view'][]; children: ComponentChildren }) {
  const current = props.views.includes(props.route.view);
  return (
    <a href={href(props.to)} aria-current={current ? 'page' : undefined}>
      {props.children}
    </a>
  );
}

function RouteView({ route }: { route: Route }) {
  switch (route.view) {
    case 'fleet':
      return <FleetView />;
    case 'device':
      return <DeviceView key={route.id} id={route.id} tab={route.tab} />;
    case 'apps':
      return <AppsView />;
    case 'app':
      return <AppView key={route.name} name={route.name} tab={route.tab} />;
    case 'apply':
      return <ApplyView />;
    case 'admin':
      return <AdminView tab={route.tab} />;
    case 'events':
      return <EventsView />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            Nothing is at <code>#{route.path}</code>. <a href={href([])}>Back to the fleet</a>
          </p>
        </section>
      );
  }
}
