// What Sentinels announce on their pub/sub (`+switch-master`, `+convert-to-slave`, `+sdown`, `+tilt`...), for a test
// to wait on instead of polling: a failover's steps take seconds of Sentinel's own timers, more under load. Every
// announcement is kept, so a wait that gives up says what the Sentinels did meanwhile.
import { EventEmitter } from 'node:events'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { within } from './helpers.js'
import type { RedisServer } from './redis-server.js'

export class SentinelAnnouncements {
  /** Each announcement heard, as `S<sentinel> <event> <message> (<seconds since listening began> s)`. */
  readonly heard: string[] = []
  readonly #count: number
  readonly #news = new EventEmitter()

  private constructor (count: number) {
    this.#count = count
  }

  /** Listens to each of `sentinels` (subscribed once this resolves), until the test's end. */
  static async listen (t: Test, sentinels: RedisServer[]): Promise<SentinelAnnouncements> {
    const announcements = new SentinelAnnouncements(sentinels.length)
    const began = Date.now()
    for (const [index, { port }] of sentinels.entries()) {
      const listener = new Redis(port, '127.0.0.1')
      t.teardown(() => listener.disconnect())
      await listener.psubscribe('*')
      listener.on('pmessage', (_pattern: string, event: string, message: string) => {
        // Events only: the Sentinels' own `__sentinel__:hello` chatter, every 2 s, is left out.
        if (event.startsWith('__')) return
        announcements.heard.push(`S${index} ${event} ${message} (${((Date.now() - began) / 1_000).toFixed(1)} s)`)
        announcements.#news.emit('heard')
      })
    }
    return announcements
  }

  /**
   * Resolves once `event` has been announced, its message containing `text`, by every Sentinel (or by `one`), whether
   * before the call or after; rejects after `ms` with what was heard.
   */
  async announced (event: string, text: string, by: 'every' | 'one', ms: number): Promise<void> {
    const done = () => {
      const sentinels = new Set(this.heard.filter(line => line.split(' ')[1] === event && line.includes(text)).map(line => line.split(' ')[0]))
      return sentinels.size >= (by === 'one' ? 1 : this.#count)
    }
    let listener = () => {}
    const heard = new Promise<void>(resolve => {
      listener = () => { if (done()) resolve() }
      this.#news.on('heard', listener)
      listener()
    })
    try {
      await within(heard, `${event} ${text} from ${by} Sentinel`, ms)
    } catch (err) {
      throw new Error(`${(err as Error).message}; the Sentinels announced:\n${this.heard.join('\n')}`)
    } finally {
      this.#news.off('heard', listener)
    }
  }
}
