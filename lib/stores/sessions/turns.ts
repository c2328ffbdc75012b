// Changes made one at a time per key within a process: for a store whose only calls are get/set/destroy, where two
// read-then-writes at once would each write back what the other had not seen.

/**
 * After a write's deadline, how long a change that never answered holds the next: a write that has not landed in a
 * minute is taken for lost (one that lands later could still overwrite the next change).
 */
const takenForLostAfterMs = 60_000

/** Per key, the change under way; the next of that key waits for it, at most until a minute past its deadline. */
export class Turns {
  readonly #last = new Map<string, Promise<void>>()

  take<T> (key: string, deadline: number, change: () => Promise<T>): Promise<T> {
    const changed = (this.#last.get(key) ?? Promise.resolve()).then(change)
    let timer: NodeJS.Timeout | undefined
    const settled = Promise.race([
      changed.then(() => {}, () => {}),
      new Promise<void>(resolve => { timer = setTimeout(resolve, deadline + takenForLostAfterMs - Date.now()).unref() })
    ]).finally(() => clearTimeout(timer))
    this.#last.set(key, settled)
    settled.then(() => { if (this.#last.get(key) === settled) this.#last.delete(key) })
    return changed
  }
}
