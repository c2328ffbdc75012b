// What a user can observe (`fastify.realtime.on(...)`): authentications, refusals, expiries and closes. A
// listener that throws, or whose promise rejects, is logged and never breaks the socket it was told about.
import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import type { RealtimeEventMap, RealtimeEventName } from '../types/index.js'
import { isThenable } from './thenable.js'
import { RepeatedFailures } from './repeated-failures.js'

export class RealtimeEvents {
  readonly #emitter = new EventEmitter()
  readonly #log: FastifyBaseLogger
  /** Each listener's failures, logged apart: one listener's bug does not hide another's. */
  readonly #failures = new WeakMap<object, RepeatedFailures>()

  constructor (log: FastifyBaseLogger) {
    this.#log = log
  }

  on<E extends RealtimeEventName> (event: E, listener: (payload: RealtimeEventMap[E]) => void): void {
    this.#emitter.on(event, listener)
  }

  off<E extends RealtimeEventName> (event: E, listener: (payload: RealtimeEventMap[E]) => void): void {
    this.#emitter.off(event, listener)
  }

  /** Whether anybody listens: a payload nobody would see is not built. */
  has (event: RealtimeEventName): boolean {
    return this.#emitter.listenerCount(event) > 0
  }

  #failed (listener: object, event: RealtimeEventName, err: unknown, log: FastifyBaseLogger): void {
    let failures = this.#failures.get(listener)
    if (failures === undefined) {
      failures = new RepeatedFailures('a realtime event listener failed')
      this.#failures.set(listener, failures)
    }
    failures.log(log, { err, event })
  }

  emit<E extends RealtimeEventName> (event: E, payload: RealtimeEventMap[E]): void {
    // A socket's event is logged on its upgrade request's log: the app's request id says which socket it was.
    const log = 'connection' in payload ? payload.connection.request.log : this.#log
    for (const listener of this.#emitter.listeners(event)) {
      try {
        // An async listener (an audit store's write) rejects instead: unheard, that would end the process.
        const pending: unknown = listener(payload)
        if (isThenable(pending)) Promise.resolve(pending).catch((err: unknown) => this.#failed(listener, event, err, log))
      } catch (err) {
        this.#failed(listener, event, err, log)
      }
    }
  }
}
