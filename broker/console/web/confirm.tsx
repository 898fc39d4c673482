/**
 * Asking before a destructive action (abort, revoke, delete, replace), the
 * same way in every view: a modal `<dialog>` with the action's own word on
 * the confirming button and `Cancel` beside it.
 *
 * A native modal dialog keeps focus inside itself and closes on Escape; when
 * it closes, focus goes back to whatever opened it, so a keyboard user keeps
 * their place in a long table. Destructive questions start on `Cancel`, so
 * a stray Enter does no harm.
 *
 *   const { confirm, dialog } = useConfirm();
 *   if (await confirm({ title: 'Replace secret db-pass?', confirmLabel: 'Replace' })) …
 *   return <>{…}{dialog}</>;
 *
 * or, for a button that only acts once confirmed:
 *
 *   <ConfirmButton confirm={{ title: `Revoke ${id}?`, confirmLabel: 'Revoke', danger: true }} onConfirm={revoke} />
 */
import type { ComponentChildren, VNode } from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';
import { ErrorNote } from './components.js';
import './confirm.css';

export interface ConfirmRequest {
  /** The question, as the dialog's heading: `Revoke device dev-1?`. */
  title: string;
  /** What will happen, in a sentence or two. */
  message?: ComponentChildren;
  /** The confirming button's word, the same as the action's: `Revoke`, `Delete`, `Abort`. */
  confirmLabel: string;
  cancelLabel?: string;
  /** Destructive: the confirming button is red and focus starts on Cancel. */
  danger?: boolean;
}

interface Pending {
  request: ConfirmRequest;
  opener: HTMLElement | null;
  resolve: (confirmed: boolean) => void;
}

/**
 * `confirm(request)` shows the dialog and resolves `true` only when the
 * confirming button is pressed (Cancel, Escape or leaving the view: `false`).
 * The caller renders `dialog` somewhere in its tree.
 */
export function useConfirm(): { confirm: (request: ConfirmRequest) => Promise<boolean>; dialog: VNode | null } {
  const [pending, setPending] = useState<Pending | null>(null);
  const pendingRef = useRef<Pending | null>(null);
  pendingRef.current = pending;
  // A view that goes away with a question open answers it "no".
  useEffect(() => () => pendingRef.current?.resolve(false), []);
  const confirm = useCallback(
    (request: ConfirmRequest) =>
      new Promise<boolean>((resolve) => {
        pendingRef.current?.resolve(false);
        const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
        setPending({ request, opener, resolve });
      }),
    [],
  );
  const settle = useCallback((confirmed: boolean) => {
    const current = pendingRef.current;
    if (!current) return;
    pendingRef.current = null;
    setPending(null);
    current.resolve(confirmed);
    // After the dialog has left the page, so the browser's own focus return cannot undo ours.
    requestAnimationFrame(() => {
      if (current.opener?.isConnected) current.opener.focus();
    });
  }, []);
  const dialog = pending ? <ConfirmDialog request={pending.request} settle={settle} /> : null;
  return { confirm, dialog };
}

function ConfirmDialog(props: { request: ConfirmRequest; settle: (confirmed: boolean) => void }) {
  const { request, settle } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const messageId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => {
      if (dialog?.open) dialog.close();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="confirm card"
      aria-labelledby={titleId}
      aria-describedby={request.message ? messageId : undefined}
      onClose={(event) => settle((event.currentTarget as HTMLDialogElement).returnValue === 'confirm')}
    >
      {/* Its submit closes the dialog; it must not reach a form the dialog happens to sit in. */}
      <form method="dialog" onSubmit={(event) => event.stopPropagation()}>
        <h2 id={titleId}>{request.title}</h2>
        {request.message && (
          <div id={messageId} class="confirm-message">
            {request.message}
          </div>
        )}
        <div class="confirm-actions">
          <button type="submit" value="cancel" class="secondary" autofocus={request.danger === true}>
            {request.cancelLabel ?? 'Cancel'}
          </button>
          <button type="submit" value="confirm" class={request.danger ? 'danger' : undefined} autofocus={request.danger !== true}>
            {request.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/**
 * A button whose action runs only once confirmed. While it runs the button
 * is disabled; if it fails, the hub's message is shown beside the button
 * (an `onConfirm` that shows its own errors just catches them). Its text is
 * the confirming word unless children say otherwise, so the button and the
 * dialog's answer name the same action.
 */
export function ConfirmButton(props: {
  confirm: ConfirmRequest;
  onConfirm: () => unknown;
  children?: ComponentChildren;
  class?: string;
  disabled?: boolean;
  title?: string;
}) {
  const { confirm, dialog } = useConfirm();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );
  const click = async () => {
    if (!(await confirm(props.confirm))) return;
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
    } catch (err) {
      if (mounted.current) setError(err);
    } finally {
      if (mounted.current) setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class={props.class ?? (props.confirm.danger ? 'danger' : undefined)}
        disabled={props.disabled || busy}
        aria-busy={busy || undefined}
        title={props.title}
        onClick={() => void click()}
      >
        {props.children ?? props.confirm.confirmLabel}
      </button>
      {dialog}
      {error !== null && <ErrorNote error={error} />}
    </>
  );
}
