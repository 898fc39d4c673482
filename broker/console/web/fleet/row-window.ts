/**
 * Which rows of a long table to put in the DOM: the ones in or near the
 * viewport. Measured in Chromium on two cores, a thousand fleet rows cost
 * 350-400 ms of layout at first render and again on every live update (a
 * table is laid out whole), so a long list renders a window of rows between
 * two spacer rows of the height of the rest; a short one renders every row.
 * Rows have one fixed height (fleet.css), so positions are arithmetic.
 */
import type { RefObject } from 'preact';
import { useLayoutEffect, useState } from 'preact/hooks';

/** The height of a row in pixels: `table.fleet tbody tr` in fleet.css. */
export const ROW_HEIGHT = 41;
/** Up to this many rows, all are rendered (the page's own search then finds every row). */
export const RENDER_ALL_UP_TO = 200;
/** Rows rendered beyond each edge of the viewport, so scrolling and tabbing find the next row in place. */
const OVERSCAN = 15;

export interface RowRange {
  /** Index of the first row rendered. */
  first: number;
  /** One past the last. */
  end: number;
}

/**
 * The rows to render when the table body's top edge is `top` pixels below
 * the viewport's (negative once scrolled past) and the viewport is `height`
 * pixels high.
 */
export function rowRange(count: number, top: number, height: number): RowRange {
  if (count <= RENDER_ALL_UP_TO) return { first: 0, end: count };
  const firstVisible = Math.floor(Math.max(0, -top) / ROW_HEIGHT);
  const visible = Math.ceil(height / ROW_HEIGHT) + 1;
  const first = Math.max(0, Math.min(firstVisible, count - visible) - OVERSCAN);
  return { first, end: Math.min(count, firstVisible + visible + OVERSCAN) };
}

/** The range of rows of `body` to render now, following the page's scrolling and size. */
export function useRowRange(count: number, body: RefObject<HTMLElement>): RowRange {
  const [range, setRange] = useState(() => rowRange(count, 0, innerHeight));
  useLayoutEffect(() => {
    let frame = 0;
    const measure = () => {
      frame = 0;
      const top = body.current?.getBoundingClientRect().top ?? 0;
      const next = rowRange(count, top, innerHeight);
      setRange((current) => (current.first === next.first && current.end === next.end ? current : next));
    };
    const schedule = () => {
      if (frame === 0) frame = requestAnimationFrame(measure);
    };
    measure();
    // Capture: the scrolling element may be any ancestor, not only the page.
    addEventListener('scroll', schedule, { passive: true, capture: true });
    addEventListener('resize', schedule, { passive: true });
    return () => {
      cancelAnimationFrame(frame);
      removeEventListener('scroll', schedule, { capture: true });
      removeEventListener('resize', schedule);
    };
  }, [count, body]);
  return range;
}
