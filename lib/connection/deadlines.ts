// The guards' clocks: token expiries and auth windows for every socket of an endpoint, on a handful of Node timers
// instead of one or two per socket. A socket's deadline is then a Set entry: cheaper to make and to drop on every
// handshake, and lighter for every idle socket to keep.

/** Told by the expiry clock when its credential ran out, with the deadline it was scheduled for. */
export interface Expiring {
  onExpiry (deadline: number): void
}

/** Told by the auth windows when nobody authenticated in time. */
export interface Authenticating {
  onAuthWindowEnd (): void
}

// setTimeout holds at most 2^31-1 ms (24.8 days); later deadlines are reached in hops.
const longestTimeoutMs = 2 ** 31 - 1

interface Bucket {
  timer: NodeJS.Timeout
  targets: Set<Expiring>
}

/**
 * Token expiries, grouped by deadline: access tokens carry `exp` in whole seconds, so every socket whose token was
 * signed in the same second shares one bucket and one timer, which fires at the deadline to the millisecond.
 */
export class ExpiryClock {
  readonly #buckets = new Map<number, Bucket>()
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

  /** Calls `target.onExpiry(deadline)` at `deadline` (epoch milliseconds) unless cancelled first. */
  schedule (target: Expiring, deadline: number): void {
    let bucket = this.#buckets.get(deadline)
    if (!bucket) {
      bucket = { timer: this.#arm(deadline), targets: new Set() }
      this.#buckets.set(deadline, bucket)
    }
    bucket.targets.add(target)
  }

  cancel (target: Expiring, deadline: number): void {
    const bucket = this.#buckets.get(deadline)
    if (!bucket || !bucket.targets.delete(target) || bucket.targets.size > 0) return
    // An empty bucket's timer would keep the process alive for nobody.
    clearTimeout(bucket.timer)
    this.#buckets.delete(deadline)
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
    // on meanwhile (closed, or authenticated anew) ignores the deadline; one that throws keeps no other from expiring.
    this.#buckets.delete(deadline)
    for (const target of bucket.targets) {
      try {
        target.onExpiry(deadline)
      } catch (err) {
        this.#onError(err)
      }
    }
  }
}

/**
 * Auth windows (the handshake's, and re-auth after an expiry): all of one length, so they end in the order they
 * began. One timer waits for the oldest; a window that closes early is only taken out of the queue, and the timer,
 * when it comes, waits for the next one or stops. Most windows close within a millisecond of opening: arming and
 * clearing a timer for each would cost more than the rest of the bookkeeping. The timer is unref'd: it never keeps
 * a process alive, the sockets it waits for do.
 */
export class AuthWindows {
  readonly lengthMs: number
  // Insertion order is start order, so the first entry is always the next to end.
  readonly #open = new Map<Authenticating, number>()
  #timer: NodeJS.Timeout | null = null

  constructor (lengthMs: number) {
    this.lengthMs = lengthMs
  }

  open (target: Authenticating): void {
    this.#open.delete(target) // a window opened again starts again, at the end of the queue
    this.#open.set(target, performance.now() + this.lengthMs)
    // A pending timer is due no later than this window's end: it was armed for a window that opened before.
    if (this.#timer === null) this.#arm(this.lengthMs)
  }

  close (target: Authenticating): void {
    this.#open.delete(target)
  }

  #arm (delayMs: number): void {
    this.#timer = setTimeout(this.#fire, delayMs).unref()
  }

  readonly #fire = (): void => {
    this.#timer = null
    const now = performance.now()
    for (const [target, end] of this.#open) {
      if (end > now) {
        // A window opened by a target told just now has armed the timer for its own end, later than this one.
        if (this.#timer) clearTimeout(this.#timer)
        this.#arm(end - now)
        return
      }
      this.#open.delete(target)
      target.onAuthWindowEnd()
    }
  }
}
