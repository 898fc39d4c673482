/** Placeholder until the view is built. */
export function ApplyView() {
  return (
    <section>
      <h1>ApplyView</h1>
    </section>
  );
}
