// A @fastify/session store's get/set/destroy as promises. A missing record is no error; a store answering with
// promises instead of callbacks (its method's promise settled, its callback never called) is refused at its first
// call, rather than each call left to time out while it writes records without a lifetime.
import type { FastifyBaseLogger } from 'fastify'
import { InvalidConfigError } from '../../errors.js'
import type { CallbackSessionStore } from './fastify-session.js'

type Method = keyof CallbackSessionStore

export class CallbackCalls {
  readonly #store: CallbackSessionStore
  #refusal: Error | null = null
  #log: FastifyBaseLogger | null = null

  constructor (store: CallbackSessionStore) {
    this.#store = store
  }

  /** Where a refusal is told, once: the app's logger, as the plugin registers. */
  logTo (log: FastifyBaseLogger): void {
    this.#log = log
  }

  async get (id: string): Promise<unknown> {
    try {
      return await this.#call('get', [id])
    } catch (err) {
      // As express-session has it: session-file-store calls back ENOENT for a missing file.
      if ((err as { code?: unknown } | null)?.code === 'ENOENT') return undefined
      throw err
    }
  }

  async set (id: string, record: object): Promise<void> {
    await this.#call('set', [id, record])
  }

  async destroy (id: string): Promise<void> {
    await this.#call('destroy', [id])
  }

  #call (method: Method, args: unknown[]): Promise<unknown> {
    if (this.#refusal) return Promise.reject(this.#refusal)
    return new Promise((resolve, reject) => {
      let calledBack = false
      const returned: unknown = (this.#store[method] as (...args: unknown[]) => unknown)
        .call(this.#store, ...args, (err: unknown, value?: unknown) => {
          calledBack = true
          if (err) reject(err)
          else resolve(value)
        })
      // connect-redis's methods are async and call back too: only a promise settled with no callback (a turn later,
      // for one that calls back just after) tells a promise-style store.
      if (typeof (returned as PromiseLike<unknown> | null)?.then !== 'function') return
      const settled = () => setImmediate(() => { if (!calledBack) reject(this.#refuse(method)) })
      ;(returned as PromiseLike<unknown>).then(settled, settled)
    })
  }

  #refuse (method: Method): Error {
    if (!this.#refusal) {
      this.#refusal = new InvalidConfigError(`sessionStore: fromFastifySessionStore takes a store whose get, set and destroy call back, as @fastify/session's do; this one's ${method} answered with a promise and never called back (a promise-style store, such as @mgcrea/fastify-session-redis-store)`)
      this.#log?.error({ err: this.#refusal }, this.#refusal.message)
    }
    return this.#refusal
  }
}
