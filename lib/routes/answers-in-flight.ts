// Fastify's `forceCloseConnections: true` cuts every connection once the preClose hooks are done, a busy one too: a
// login or refresh cut there may have acted (a session made, a refresh token rotated) for a client that never hears
// of it, as a socket's credential check would (socket-server.ts). The plugin's answers in flight are waited for first.
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { deadline } from '../deadline.js'

// One listener for every response, no closure: it finds its set on itself.
const inFlight = Symbol('fastify-realtime.inFlight')
type Tracked = ServerResponse & { [inFlight]?: Set<ServerResponse> }

function answered (this: Tracked): void {
  this[inFlight]!.delete(this)
}

export class AnswersInFlight {
  readonly #open = new Set<ServerResponse>()

  /** An onRequest hook of the plugin's routes: an HTTP request is in flight until its response is sent or cut. */
  readonly track = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    // An upgrade has no HTTP answer once its socket opens: the socket server closes it with the app.
    if (!request.ws) {
      const response = reply.raw as Tracked
      response[inFlight] = this.#open
      this.#open.add(response)
      response.once('close', answered)
    }
    done()
  }

  /** Once every answer in flight now is sent (or its client left), within `ms`. */
  async sent (ms: number): Promise<void> {
    if (this.#open.size === 0) return
    const closed = [...this.#open].map(response => new Promise(resolve => response.once('close', resolve)))
    await deadline(Promise.all(closed), ms).catch(() => {})
  }
}
