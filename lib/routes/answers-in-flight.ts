// Fastify's `forceCloseConnections: true` cuts every connection once the preClose hooks are done, a busy one too: a
// login or refresh cut there may have acted (a session made, a refresh token rotated) for a client that never hears
// of it, as a socket's credential check would (socket-server.ts). The plugin's answers in flight are waited for first.
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { deadline } from '../deadline.js'

// One listener for every response, no closure: it finds its tracker on itself.
const inFlight = Symbol('fastify-realtime.inFlight')
type Tracked = ServerResponse & { [inFlight]?: AnswersInFlight }

function answered (this: Tracked): void {
  this[inFlight]!.answered(this)
}

export class AnswersInFlight {
  readonly #open = new Set<ServerResponse>()
  /** Resolves `sent`'s wait once no answer is in flight. */
  #drained: (() => void) | null = null

  /** An onRequest hook of the plugin's routes: an HTTP request is in flight until its response is sent or cut. */
  readonly track = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    // An upgrade has no HTTP answer once its socket opens: the socket server closes it with the app.
    if (!request.ws) {
      const response = reply.raw as Tracked
      response[inFlight] = this
      this.#open.add(response)
      response.once('close', answered)
    }
    done()
  }

  /** `response` was sent, or its client left. */
  answered (response: ServerResponse): void {
    this.#open.delete(response)
    if (this.#open.size === 0) this.#drained?.()
  }

  /**
   * Once no answer is in flight, within `ms`: those of requests that came during the close too (Fastify routes them
   * under `return503OnClosing: false`), which its cut would meet as well.
   */
  async sent (ms: number): Promise<void> {
    if (this.#open.size === 0) return
    await deadline(new Promise<void>(resolve => { this.#drained = resolve }), ms).catch(() => {})
    this.#drained = null
  }
}
