/**
 * A credential the hub returns exactly once (a registration token, a
 * service account's key): it keeps only a hash, so the console says so
 * plainly and offers a copy. The clipboard API needs a secure context
 * (https, or 127.0.0.1); elsewhere the text is selected for Ctrl+C instead.
 */
import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';

export function ShownOnce(props: { label: string; value: string; children?: ComponentChildren; onDismiss: () => void }) {
  const valueRef = useRef<HTMLElement>(null);
  const [status, setStatus] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.value);
      setStatus('Copied.');
    } catch {
      const element = valueRef.current;
      if (element) getSelection()?.selectAllChildren(element);
      setStatus('Selected: press Ctrl+C (⌘C) to copy.');
    }
  };
  return (
    <section class="card shown-once" aria-label={props.label}>
      <h2>{props.label}</h2>
      <p class="once-warning">
        <strong>Copy it now: it will not be shown again.</strong> The hub keeps only a hash of it.
      </p>
      <div class="once-value">
        <code data-once ref={valueRef}>
          {props.value}
        </code>
        <button type="button" class="secondary" onClick={() => void copy()}>
          Copy
        </button>
      </div>
      <p role="status" class="help once-status">
        {status}
      </p>
      {props.children}
      <button type="button" class="link" onClick={props.onDismiss}>
        Done, hide it
      </button>
    </section>
  );
}

/** What ShownOnce shows of a created credential. */
export interface OnceShown {
  label: string;
  value: string;
  help: ComponentChildren;
}

/**
 * A create form and, once it succeeds, the credential it returned, shown
 * once between the form and the list until dismissed.
 */
export function CreateShownOnce<T>(props: {
  form: (onCreated: (created: T) => void) => ComponentChildren;
  shown: (created: T) => OnceShown;
  onCreated: () => void;
}) {
  const [created, setCreated] = useState<T | null>(null);
  const shown = created === null ? null : props.shown(created);
  return (
    <>
      {props.form((value) => {
        setCreated(value);
        props.onCreated();
      })}
      {shown && (
        <ShownOnce label={shown.label} value={shown.value} onDismiss={() => setCreated(null)}>
          {shown.help}
        </ShownOnce>
      )}
    </>
  );
}
