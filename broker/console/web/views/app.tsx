/**
 * One app (`#/apps/NAME[/TAB]`): what it runs and where (Overview), its
 * revisions and the diff between two (Revisions), its rollout (Rollout), and
 * the editor on its current spec (Edit, operators only).
 */
import { AppOverview } from '../apps/overview.js';
import { AppRevisions } from '../apps/revisions.js';
import { AppRollout } from '../apps/rollout.js';
import { Await, type Tab, Tabs } from '../components.js';
import { SpecEditor } from '../editor/spec-editor.js';
import { useLoad } from '../hooks.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import '../apps/apps.css';

export function AppView({ name, tab }: { name: string; tab: string }) {
  const { can } = useSession();
  const tabs: Tab[] = [
    { id: 'overview', label: 'Overview' },
    { id: 'revisions', label: 'Revisions' },
    { id: 'rollout', label: 'Rollout' },
    ...(can('operator') ? [{ id: 'edit', label: 'Edit' }] : []),
  ];
  const known = tabs.some((t) => t.id === tab);
  return (
    <section>
      <h1>{name}</h1>
      <Tabs base={['apps', name]} tabs={tabs} current={known ? tab : 'overview'} label={`App ${name}`} />
      {!known && tab !== 'overview' && (
        <p class="notice">
          There is no <code>{tab}</code> tab here{tab === 'edit' ? ' for your role' : ''}; this is the overview.
        </p>
      )}
      <AppTab name={name} tab={known ? tab : 'overview'} />
    </section>
  );
}

function AppTab({ name, tab }: { name: string; tab: string }) {
  switch (tab) {
    case 'revisions':
      return <AppRevisions name={name} />;
    case 'rollout':
      return <AppRollout name={name} />;
    case 'edit':
      return <AppEdit name={name} />;
    default:
      return <AppOverview name={name} />;
  }
}

/** The editor on the current spec; what it applies becomes the app's next revision. */
function AppEdit({ name }: { name: string }) {
  const { api } = useSession();
  const [app] = useLoad(() => api.call('apps.get', { name }), [api, name]);
  return (
    <Await loaded={app}>
      {(value) => (
        <SpecEditor
          appName={name}
          initialSpec={value.spec}
          intro={
            <p class="help">
              Editing the current spec (r{value.revision}). Applying a change makes the next revision and starts its{' '}
              <a href={href(['apps', name, 'rollout'])}>rollout</a>.
            </p>
          }
        />
      )}
    </Await>
  );
}
