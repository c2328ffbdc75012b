// Whether the subscriber still hears what is published. A subscribed connection can stay up, answer its PINGs and hear
// nothing: a cluster node cut off from the others' relays, or removed from its cluster and left running alone, a proxy
// that lost its own subscription. So each process publishes a probe on a channel only its own subscriber listens to,
// and cuts a subscriber that does not hear it back: it connects again (to another node of a cluster), subscribes again,
// and the feeds replay what was published since the last probe it heard.
import type { FastifyBaseLogger } from 'fastify'
import type { Checked } from './redis-connection.js'

/** How often a probe goes out, and how long the subscriber has to hear it once Redis has taken it. */
export const probeEveryMs = 1_000
export const heardWithinMs = 2_000

export interface SubscriptionProbe {
  /** Called with each message on the probe's channel. */
  heard (message: string): void
  /** Called once the probe's channel is subscribed (again): the subscription made on the connection up now is probed. */
  subscribed (): void
  /**
   * Until when (epoch milliseconds, this process's clock) everything published has been heard: when the last probe
   * heard went out, or when the probe began.
   */
  readonly heardUpTo: number
  stop (): void
}

/**
 * `current` is the subscriber's connection now (a cluster's moves between nodes), `publish` publishes a message on the
 * probe's channel and rejects when it could not (the command connection away). One probe awaits Redis's answer at a
 * time: a Redis that does not answer gets no more.
 */
export function probeSubscription (current: () => Checked | null, publish: (message: string) => Promise<unknown>, log: FastifyBaseLogger): SubscriptionProbe {
  let heardUpTo = Date.now()
  let subscribedOn: Checked['stream'] | null = null
  let probes = 0
  let lastHeard = 0
  let unanswered = false
  /** When each probe not heard yet went out. */
  const sentAt = new Map<number, number>()
  const timer = setInterval(() => {
    const connection = current()
    if (unanswered || connection === null || connection.status !== 'ready' || connection.stream !== subscribedOn) return
    const { stream } = connection
    const probe = ++probes
    sentAt.set(probe, Date.now())
    unanswered = true
    publish(String(probe)).then(() => {
      unanswered = false
      // Timers run before the poll for I/O: one turn after the wait, what came during a stall has been read. A
      // connection that went away, or was made anew, meanwhile is probed again once subscribed.
      setTimeout(() => setImmediate(() => {
        sentAt.delete(probe)
        if (lastHeard >= probe || connection.status !== 'ready' || connection.stream !== stream) return
        log.warn(`the Redis subscriber did not hear its probe within ${heardWithinMs / 1_000} s: listening again`)
        stream.destroy()
      }), heardWithinMs).unref()
    }, () => {
      unanswered = false
      sentAt.delete(probe)
    })
  }, probeEveryMs)
  timer.unref()
  return {
    heard (message) {
      const probe = Number(message)
      const at = sentAt.get(probe)
      if (at === undefined) return
      lastHeard = Math.max(lastHeard, probe)
      heardUpTo = Math.max(heardUpTo, at)
    },
    subscribed () {
      subscribedOn = current()?.stream ?? null
    },
    get heardUpTo () {
      return heardUpTo
    },
    stop () {
      clearInterval(timer)
    }
  }
}
