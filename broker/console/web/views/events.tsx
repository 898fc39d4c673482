/** Placeholder until the view is built. */
export function EventsView() {
  return (
    <section>
      <h1>EventsView</h1>
    </section>
  );
}
