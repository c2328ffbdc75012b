// Log lines across processes: every process publishes its lines, and hears every process's, its own included.
import type { RedisConnections } from '../redis-connection.js'
import { redisKeys } from '../redis-keys.js'
import type { LineHandler, LogFeed } from './contract.js'

export class RedisLogFeed implements LogFeed {
  readonly shared = true
  readonly #redis: RedisConnections
  readonly #channel: string
  readonly #node: string

  constructor (redis: RedisConnections, prefix: string, node: string) {
    this.#redis = redis
    this.#channel = redisKeys(prefix, redis.commands.options.keyPrefix).logsChannel
    this.#node = node
  }

  publish (line: string): void {
    // Never logged when it fails: that line would come back here, and Redis being away is logged already.
    this.#redis.commands.publish(this.#channel, `${this.#node}\n${line}`).catch(() => {})
  }

  start (onLine: LineHandler): void {
    this.#redis.listen(this.#channel, (message) => {
      const split = message.indexOf('\n')
      if (split > 0) onLine(message.slice(split + 1), message.slice(0, split))
    })
  }
}
