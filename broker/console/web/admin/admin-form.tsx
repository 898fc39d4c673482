/**
 * How the admin forms send: the fields are checked in the page first, and
 * their errors shown only once a submit was tried (not at the first letter
 * typed); the hub's refusal is shown at the field it names, and whatever
 * names none of the form's fields in a note above the submit button.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ErrorNote } from '../components.js';
import { hubIssueAt, shownAtFields } from './hub-issues.js';
import type { Checked } from './validate.js';

export function useAdminSubmit(fields: readonly string[]) {
  const [checked, setChecked] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  /** The error to show at `field`: its own check once a submit was tried, else the hub's issue at it. */
  const errorAt = (result: Checked<unknown>, field: string) =>
    (checked && !result.ok ? result.error : undefined) ?? hubIssueAt(failure, field);
  /**
   * Sends `values` (null while a field fails its check). `ask`, if given,
   * runs after the checks pass and before anything is sent: a `false` sends nothing.
   */
  const submit = async <V,>(values: V | null, send: (values: V) => Promise<void>, ask?: (values: V) => Promise<boolean>) => {
    setChecked(true);
    setFailure(null);
    if (values === null) return;
    if (ask && !(await ask(values))) return;
    setBusy(true);
    try {
      await send(values);
      setChecked(false);
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  const unshown = failure !== null && !shownAtFields(failure, fields) ? failure : null;
  return { busy, failure, unshown, errorAt, submit };
}

/** An admin form's frame: its heading, the fields, the note of an unshown failure, an optional status line, the submit button. */
export function AdminForm(props: {
  title: string;
  submitLabel: string;
  busyLabel: string;
  busy: boolean;
  /** A failure the fields do not show, or null. */
  note: unknown;
  status?: ComponentChildren;
  onSubmit: () => void;
  children: ComponentChildren;
}) {
  return (
    <form
      class="card admin-form"
      onSubmit={(event) => {
        event.preventDefault();
        props.onSubmit();
      }}
      noValidate
    >
      <h2>{props.title}</h2>
      {props.children}
      {props.note !== null && <ErrorNote error={props.note} />}
      {props.status}
      <button type="submit" disabled={props.busy} aria-busy={props.busy || undefined}>
        {props.busy ? props.busyLabel : props.submitLabel}
      </button>
    </form>
  );
}
