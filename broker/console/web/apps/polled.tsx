/**
 * A polled value on screen: `Await` for the first answer, then the last good
 * answer stays through a failed poll (the hub restarting, a dropped link)
 * with the failure above it, so the view neither blanks nor jumps.
 */
import type { ComponentChildren } from 'preact';
import { useRef } from 'preact/hooks';
import { Await, ErrorNote } from '../components.js';
import type { Loaded } from '../hooks.js';

export function Polled<T>(props: { loaded: Loaded<T>; children: (value: T) => ComponentChildren }) {
  const lastGood = useRef<{ value: T } | undefined>(undefined);
  if (props.loaded.state === 'ready') lastGood.current = { value: props.loaded.value };
  if (!lastGood.current) return <Await loaded={props.loaded}>{props.children}</Await>;
  return (
    <>
      {props.loaded.state === 'failed' && <ErrorNote error={props.loaded.error} />}
      {props.children(lastGood.current.value)}
    </>
  );
}
