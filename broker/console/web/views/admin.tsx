/**
 * Admin: who may connect (registration tokens, service accounts, revoking
 * devices; admin only) and secrets (operators set them, viewers read their
 * names). The `Admin` link is in the navigation for admins only, yet an
 * operator reaches the secrets tab at `#/admin/secrets`, so the tab bar
 * lists only what the caller's role may use and says what needs more.
 */
import { DevicesTab } from '../admin/devices.js';
import { SecretsTab } from '../admin/secrets.js';
import { ServiceAccountsTab } from '../admin/service-accounts.js';
import { TokensTab } from '../admin/tokens.js';
import { Tabs } from '../components.js';
import { href } from '../router.js';
import { type Role, useSession } from '../session.js';
import '../admin/admin.css';

interface AdminTab {
  id: string;
  label: string;
  /** The least role that may use it: the hub's role for its methods (shared/api/methods.ts). */
  role: Role;
}

const TABS: readonly AdminTab[] = [
  { id: 'tokens', label: 'Tokens', role: 'admin' },
  { id: 'serviceaccounts', label: 'Service accounts', role: 'admin' },
  { id: 'secrets', label: 'Secrets', role: 'viewer' },
  { id: 'devices', label: 'Devices', role: 'admin' },
];

export function AdminView(props: { tab: string }) {
  const { can, who } = useSession();
  const usable = TABS.filter((tab) => can(tab.role));
  const barred = TABS.filter((tab) => !can(tab.role));
  const current = TABS.find((tab) => tab.id === props.tab);
  return (
    <section class="admin-area">
      <h1>Admin</h1>
      <Tabs base={['admin']} tabs={usable} current={props.tab} label="Admin" />
      {barred.length > 0 && (
        <p class="help">
          As {who.role} you can use {usable.map((tab) => tab.label).join(', ')}; {barred.map((tab) => tab.label.toLowerCase()).join(', ')}{' '}
          need an admin key.
        </p>
      )}
      {!current ? (
        <p>
          There is no admin tab <code>{props.tab}</code>. <a href={href(['admin', usable[0]?.id ?? 'secrets'])}>Open {usable[0]?.label}</a>
        </p>
      ) : !can(current.role) ? (
        <p class="notice">
          {current.label} need the {current.role} role; you are logged in as {who.name} ({who.role}).{' '}
          <a href={href(['admin', 'secrets'])}>Open Secrets</a>
        </p>
      ) : (
        <TabContent id={current.id} />
      )}
    </section>
  );
}

function TabContent({ id }: { id: string }) {
  switch (id) {
    case 'tokens':
      return <TokensTab />;
    case 'serviceaccounts':
      return <ServiceAccountsTab />;
    case 'secrets':
      return <SecretsTab />;
    default:
      return <DevicesTab />;
  }
}
