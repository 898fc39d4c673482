/** The login form: one API key (a service account's or the hub's admin key). */
import { useState } from 'preact/hooks';

export function LoginForm(props: { submit: (key: string) => Promise<void>; error?: string }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main class="login">
      <form
        class="card"
        onSubmit={async (event) => {
          event.preventDefault();
          setBusy(true);
          await props.submit(key.trim());
          setBusy(false);
        }}
      >
        <h1>Flotilla</h1>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="current-password"
          required
          value={key}
          onInput={(event) => setKey(event.currentTarget.value)}
          aria-describedby="api-key-help"
        />
        <p id="api-key-help" class="help">
          A service account's key (<code>flotilla serviceaccount create NAME --role viewer|operator|admin</code>) or the hub's admin key (
          <code>&lt;data-dir&gt;/admin.key</code>). It is kept in this tab only.
        </p>
        {props.error && (
          <p class="error" role="alert">
            {props.error}
          </p>
        )}
        <button type="submit" disabled={busy || key.trim() === ''}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
