/**
 * A typed event with any number of listeners: how two parts talk without
 * holding each other (the API says desired state may have changed and the
 * dispatcher, created later, listens). A listener that throws does not stop
 * the others; the error goes to `onError`.
 */
export class Signal<T = void> {
  private readonly listeners = new Set<(value: T) => void>();

  constructor(private readonly onError: (err: unknown) => void) {}

  /** Adds a listener; the returned function removes it. */
  on(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(value: T): void {
    for (const listener of this.listeners) {
      try {
        listener(value);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
