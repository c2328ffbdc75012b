// The credential checks started for each socket and not yet answered: the app's close waits for them, as a check cut
// off may have acted (a refresh token rotated, a session made) for a client that would never hear of it. An auth
// message still waiting its turn is none of them: nothing has acted for it, and it goes with its socket.

/** Keyed by each socket's guard. */
export class ChecksInFlight {
  /** How many of each target's checks have started and not answered. */
  readonly #started = new Map<object, number>()
  /** What is told once a target's checks have all answered, for the targets somebody waits for (`settled`). */
  readonly #settling = new Map<object, Settling>()

  start (target: object): void {
    this.#started.set(target, (this.#started.get(target) ?? 0) + 1)
  }

  /** A check answered. */
  end (target: object): void {
    const left = this.#started.get(target)! - 1 // every end follows its start
    if (left > 0) {
      this.#started.set(target, left)
      return
    }
    this.forget(target)
  }

  /** Whether a check started for the target has not answered yet. */
  has (target: object): boolean {
    return this.#started.has(target)
  }

  /** Resolves once every check started for the target has answered, or the target is gone; null when none has started. */
  settled (target: object): Promise<void> | null {
    if (!this.#started.has(target)) return null
    let settling = this.#settling.get(target)
    if (settling === undefined) {
      let told!: () => void
      settling = { promise: new Promise<void>(resolve => { told = resolve }), resolve: told }
      this.#settling.set(target, settling)
    }
    return settling.promise
  }

  /** The target is gone, or its last check answered: nothing of it is waited for. */
  forget (target: object): void {
    this.#started.delete(target)
    const settling = this.#settling.get(target)
    if (settling === undefined) return
    this.#settling.delete(target)
    settling.resolve()
  }
}

interface Settling {
  promise: Promise<void>
  resolve: () => void
}
