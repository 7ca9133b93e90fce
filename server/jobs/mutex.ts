// A lock per key inside one process: calls for the same key run one after another, in the order
// they asked. The SQLite store's lock (one server per file) and the first stage of the PostgreSQL
// store's lock (so one replica queues its own writers before taking a database connection).
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => this.tails.get(key) === tail && this.tails.delete(key));
    return result;
  }
}
