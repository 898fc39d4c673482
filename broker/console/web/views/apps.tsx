/** Placeholder until the view is built. */
export function AppsView() {
  return (
    <section>
      <h1>AppsView</h1>
    </section>
  );
}
