/** Placeholder until the view is built. */
export function AdminView(_props: { tab: string }) {
  return (
    <section>
      <h1>Admin</h1>
    </section>
  );
}
