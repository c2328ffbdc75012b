// The guards' clocks: token expiries for every socket of an endpoint on a handful of Node timers instead of one per
// socket (a socket's expiry is then a Set entry, lighter for every idle socket to keep), and the auth windows.

/**
 * Told by the expiry clock when its credential ran out, in two steps: every target of a deadline is told
 * (`tellExpiry`: its client hears), then each settles (`onExpiry`), so that the last client of a deadline waits for
 * the others' frames alone, not for their bookkeeping as well.
 */
export interface Expiring {
  tellExpiry (): void
  onExpiry (): void
}

/** Told by the auth windows when nobody authenticated in time. */
export interface Authenticating {
  onAuthWindowEnd (): void
}

// A timer waits on the monotonic clock, `exp` is on the wall clock: one stepped forward meanwhile (NTP, a resume from
// suspend) brings the deadline closer, and a timer set for the whole wait would fire late by the step. Deadlines are
// reached in hops of a minute at most, each measured anew (setTimeout holds 24.8 days at most anyway).
const longestTimeoutMs = 60_000

/**
 * The targets of one deadline. A target keeps the bucket it was scheduled in rather than the deadline: a reference,
 * where epoch milliseconds would be a number object of its own on every idle socket.
 */
export interface ExpiryBucket {
  readonly deadline: number
  timer: NodeJS.Timeout
  readonly targets: Set<Expiring>
}

/**
 * Token expiries, grouped by deadline: access tokens carry `exp` in whole seconds, so every socket whose token was
 * signed in the same second shares one bucket and one timer, which fires at the deadline to the millisecond.
 */
export class ExpiryClock {
  readonly #buckets = new Map<number, ExpiryBucket>()
  readonly #onError: (err: unknown) => void
  readonly #now: () => number

  /**
   * `onError`: told of a target that threw when told its expiry (the others are told all the same). `now`: the wall
   * clock `exp` is measured on (a test's own, to see a timer that fires before it).
   */
  constructor (onError: (err: unknown) => void, now: () => number = Date.now) {
    this.#onError = onError
    this.#now = now
  }

  /** Calls `target.onExpiry()` at `deadline` (epoch milliseconds) unless cancelled first, even while it fires. */
  schedule (target: Expiring, deadline: number): ExpiryBucket {
    let bucket = this.#buckets.get(deadline)
    if (!bucket) {
      bucket = { deadline, timer: this.#arm(deadline), targets: new Set() }
      this.#buckets.set(deadline, bucket)
    }
    bucket.targets.add(target)
    return bucket
  }

  cancel (target: Expiring, bucket: ExpiryBucket): void {
    if (!bucket.targets.delete(target) || bucket.targets.size > 0 || this.#buckets.get(bucket.deadline) !== bucket) return
    // An empty bucket's timer would keep the process alive for nobody.
    clearTimeout(bucket.timer)
    this.#buckets.delete(bucket.deadline)
  }

  #arm (deadline: number): NodeJS.Timeout {
    return setTimeout(this.#fire, Math.min(Math.max(0, deadline - this.#now()), longestTimeoutMs), deadline)
  }

  readonly #fire = (deadline: number): void => {
    const bucket = this.#buckets.get(deadline)!
    if (deadline > this.#now()) {
      // Not there yet: a hop of a far deadline, or a timer that ran ahead of the wall clock.
      bucket.timer = this.#arm(deadline)
      return
    }
    // Taken out first: a target that schedules again while it expires starts a bucket of its own. A target that moved
    // on meanwhile (closed, or authenticated anew) has left the bucket; one that throws keeps no other from expiring.
    this.#buckets.delete(deadline)
    for (const target of bucket.targets) this.#call(target, 'tellExpiry')
    for (const target of bucket.targets) this.#call(target, 'onExpiry')
  }

  #call (target: Expiring, step: keyof Expiring): void {
    try {
      target[step]()
    } catch (err) {
      this.#onError(err)
    }
  }
}

/**
 * Auth windows (the handshake's, and re-auth after an expiry): one timer each, cleared when the window closes. The
 * timers are unref'd: they never keep a process alive, the sockets they wait for do. A window is the client's time to
 * answer: it stops while an answer waits or is checked (`hold`, a window opened meanwhile too), and runs on once every
 * answer held for has settled nothing (`release`).
 */
export class AuthWindows {
  readonly lengthMs: number
  readonly #open = new Map<Authenticating, AuthWindow>()
  /** How many of each target's client's answers wait or are being checked. */
  readonly #checking = new Map<Authenticating, number>()

  constructor (lengthMs: number) {
    this.lengthMs = lengthMs
  }

  open (target: Authenticating): void {
    this.close(target) // a window opened again starts again
    // A window opened while an answer is checked (the credential ended meanwhile) waits for it too.
    this.#open.set(target, this.#checking.has(target) ? { timer: null, leftMs: this.lengthMs } : this.#run(target, this.lengthMs))
  }

  close (target: Authenticating): void {
    const window = this.#open.get(target)
    if (window === undefined) return
    if (window.timer !== null) clearTimeout(window.timer)
    this.#open.delete(target)
  }

  /** The client answered: its window waits for the check, however long the server takes (the check has its own bounds). */
  hold (target: Authenticating): void {
    this.#checking.set(target, (this.#checking.get(target) ?? 0) + 1)
    const window = this.#open.get(target)
    if (window === undefined || window.timer === null) return
    clearTimeout(window.timer)
    this.#open.set(target, { timer: null, leftMs: window.endsAt - performance.now() })
  }

  /** An answer held for settled: once none is left, a window they did not close runs on where it stopped. */
  release (target: Authenticating): void {
    const left = this.#checking.get(target)! - 1 // every release follows its hold
    if (left > 0) {
      this.#checking.set(target, left)
      return
    }
    this.#checking.delete(target)
    const window = this.#open.get(target)
    if (window === undefined || window.timer !== null) return
    this.#open.set(target, this.#run(target, Math.max(0, window.leftMs)))
  }

  /** The target is gone: no window, no check. */
  end (target: Authenticating): void {
    this.#checking.delete(target)
    this.close(target)
  }

  #run (target: Authenticating, ms: number): AuthWindow {
    return { timer: setTimeout(this.#fire, ms, target).unref(), endsAt: performance.now() + ms }
  }

  readonly #fire = (target: Authenticating): void => {
    this.#open.delete(target)
    target.onAuthWindowEnd()
  }
}

/**
 * A window running (its timer, and when it ends), or held while the client's answer is checked (the time it had left).
 * Its end is on the monotonic clock, as its timer: a wall clock stepped back meanwhile would have left it that much more.
 */
type AuthWindow = { timer: NodeJS.Timeout, endsAt: number } | { timer: null, leftMs: number }
