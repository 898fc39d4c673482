/** Placeholder until the view is built. */
export function FleetView() {
  return (
    <section>
      <h1>FleetView</h1>
    </section>
  );
}
