/**
 * A new app (`#/apply`): the spec editor on a starting spec. Applying a spec
 * whose name exists makes that app's next revision, as `flotilla apply` does.
 */
import { SpecEditor } from '../editor/spec-editor.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import '../apps/apps.css';

/** A small spec that is valid as it stands, with the fields most apps change. */
const STARTER = `name: my-app
scheduling:
  selectors: { site: lab }
spec:
  containers:
    - name: main
      image: busybox:1.36
      command: [/bin/sh, -c, "while true; do date; sleep 10; done"]
      restartPolicy: { name: unless-stopped }
`;

export function ApplyView() {
  const { can } = useSession();
  return (
    <section>
      <h1>New app</h1>
      {can('operator') ? (
        <SpecEditor
          initialText={STARTER}
          intro={
            <p class="help">
              The fields of a spec are in docs/reference/spec.md. Applying a name that exists makes its next revision. See{' '}
              <a href={href(['apps'])}>Apps</a>.
            </p>
          }
        />
      ) : (
        <p class="notice">Applying an app needs the operator role.</p>
      )}
    </section>
  );
}
