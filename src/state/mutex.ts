/**
 * Docker calls the plugin concurrently. Every operation that reads state to decide a write runs
 * under this lock, so "the last free address" or "the same host port" has exactly one winner.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
