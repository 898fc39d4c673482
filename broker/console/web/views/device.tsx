/** Placeholder until the view is built. */
export function DeviceView({ id }: { id: string; tab: string }) {
  return (
    <section>
      <h1>{id}</h1>
    </section>
  );
}
