// Revocations across processes: a key per revoked session (so a process that starts, or reconnects, later still
// learns of it) and a pub/sub message (so running processes hear of it at once).
import type { FastifyBaseLogger } from 'fastify'
import type { RedisConnections } from '../redis-connection.js'
import type { RevocationFeed, RevokedHandler } from './contract.js'

export class RedisRevocationFeed implements RevocationFeed {
  readonly #redis: RedisConnections
  readonly #prefix: string
  readonly #channel: string
  readonly #log: FastifyBaseLogger

  constructor (redis: RedisConnections, prefix: string, log: FastifyBaseLogger) {
    this.#redis = redis
    this.#prefix = prefix
    this.#channel = `${prefix}revocations`
    this.#log = log
  }

  async publish (session: string, until: number): Promise<void> {
    await this.#redis.commands.multi()
      .set(`${this.#prefix}revoked:${session}`, String(until), 'PXAT', until)
      .publish(this.#channel, JSON.stringify({ session, until }))
      .exec()
  }

  start (onRevoked: RevokedHandler, onLoaded: () => void): void {
    // Once subscribed (again), whatever was revoked while this process was not listening is still in Redis. A replay
    // that began once subscribed leaves nothing unknown: what came before is in the keys, what after is heard.
    let subscribed = false
    const replay = () => { this.#replay(onRevoked).then(onLoaded, () => {}) }
    this.#redis.listen(this.#channel, (message) => {
      try {
        const { session, until } = JSON.parse(message) as { session: unknown, until: unknown }
        if (typeof session === 'string' && typeof until === 'number') onRevoked(session, until)
      } catch {
        this.#log.warn(`ignored a malformed message on ${this.#channel}`)
      }
    }, () => {
      subscribed = true
      replay()
    })
    // The replay needs the command connection too: one that failed while it was away is made again once it is back.
    this.#redis.commands.on('ready', () => { if (subscribed) replay() })
  }

  async #replay (onRevoked: RevokedHandler): Promise<void> {
    const { commands } = this.#redis
    let cursor = '0'
    do {
      const [next, keys] = await commands.scan(cursor, 'MATCH', `${this.#prefix}revoked:*`, 'COUNT', 500)
      cursor = next
      if (keys.length === 0) continue
      const untils = await commands.mget(keys)
      keys.forEach((key, i) => {
        if (untils[i] !== null) onRevoked(key.slice(`${this.#prefix}revoked:`.length), Number(untils[i]))
      })
    } while (cursor !== '0')
  }
}
