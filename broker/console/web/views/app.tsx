/** Placeholder until the view is built. */
export function AppView({ name }: { name: string; tab: string }) {
  return (
    <section>
      <h1>{name}</h1>
    </section>
  );
}
