// Where the plugin's routes live: a scope of their own, under the `prefix` the app registered the plugin with (the
// plugin shares the app's instance through fastify-plugin, so Fastify itself ignores it). What the routes need and the
// app has not registered (@fastify/websocket, @fastify/cookie) is registered inside that scope, out of the app's
// sight: the app may register its own before the plugin or after it, with its own options, and never meets the
// plugin's. Whichever @fastify/websocket upgrades them, the plugin's sockets come from its own server (socket-server.ts).
import { EventEmitter } from 'node:events'
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import fastifyCookie from '@fastify/cookie'
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyInstance, onRequestHookHandler, onSendHookHandler, RegisterOptions } from 'fastify'
import type { Connection } from '../connection/connection.js'
import { SocketServer, type SocketHandler } from '../endpoints/socket-server.js'
import { closeIfLeft, responseOf, routeWatched } from './answered-upgrades.js'
import { slashTwin, upgradePaths } from './upgrade-paths.js'
import { urlRewrite } from './url-rewrite.js'
import { unaddressedClientsWarning } from './unaddressed-clients.js'
import { AnswersInFlight } from './answers-in-flight.js'
import { refuseUpgradeOn } from '../errors.js'

// Node's flag on a request it handed to the 'upgrade' listeners (@types/node 20 leaves it out).
type Upgrading = IncomingMessage & { upgrade?: boolean }

type Forward = (request: IncomingMessage, socket: Duplex, head: Buffer) => void

// The forwarders of every instance of the plugin, on whichever server: each tells the app's own listeners from them.
const forwarders = new WeakSet<Forward>()

/**
 * Whether `forward` routes the upgrades to a path none of its routes has: when the plugin's forwarders are alone on
 * the server, the last of them does (the others' routes had theirs), so that each gets one answer, Fastify's 404 to a
 * stray one. Otherwise they are a listener of the app's (a ws server of its own, socket.io): routed here, one would
 * get Fastify's 404, written into a socket that listener may have upgraded.
 */
function routesOthers (server: Server, forward: Forward): boolean {
  const listeners = server.listeners('upgrade')
  return listeners.at(-1) === forward && listeners.every(listener => forwarders.has(listener as Forward))
}

/**
 * An onSend hook of the plugin's websocket routes: an upgrade answered over HTTP (refused by the gate, or by the app's
 * own hooks: a rate limit, a load shedder) has its connection closed once the answer is sent (answered-upgrades.ts), and
 * the answer says so, as ws's own refusals do. Said `keep-alive`, a client that pools connections (Node's keep-alive
 * http.Agent, a proxy's upstream pool) sends its next request on the closed connection, and gets ECONNRESET. Node's
 * `upgrade` flag, not `request.ws`: an app's hook that refused it ran before @fastify/websocket's, which sets that.
 */
const closesConnection: onSendHookHandler = (request, reply, payload, done) => {
  if ((request.raw as Upgrading).upgrade) reply.header('connection', 'close')
  done(null, payload)
}

export class RouteScope {
  readonly sockets: SocketServer
  readonly #routes: ((scope: FastifyInstance) => void)[] = []
  /** The websocket routes' URLs, once mounted. */
  readonly #paths = new Set<string>()
  #closing = false
  readonly #answerWithinMs: number

  /**
   * `open`: the plugin's sockets open now (its registry's), which close with the app, once the answers to the
   * credential checks in flight are sent, within `answerWithinMs`.
   */
  constructor (maxPayload: number, open: () => Iterable<Connection>, answerWithinMs: number) {
    this.sockets = new SocketServer(maxPayload, open, answerWithinMs)
    this.#answerWithinMs = answerWithinMs
  }

  /** A websocket route: `gate` decides on the upgrade, `open` takes the socket. */
  websocket (path: string, gate: onRequestHookHandler, open: SocketHandler): void {
    const { sockets } = this
    this.#routes.push(scope => scope.get(path, { websocket: true, onRequest: [sockets.claim, gate], onSend: closesConnection }, sockets.handler(open)))
  }

  /** Routes of another kind, added to the scope by `add`. */
  http (add: (scope: FastifyInstance) => void): void {
    this.#routes.push(add)
  }

  /**
   * Registers the scope and its routes, with the `register` options the app gave the plugin (`prefix`, `logLevel`,
   * `logSerializers`); `cookies`: the routes read cookies (the session cookie, the login modes).
   */
  async mount (fastify: FastifyInstance, { cookies, ...registered }: RegisterOptions & { cookies: boolean }): Promise<void> {
    const { sockets } = this
    const appsWebsocket = fastify.hasDecorator('websocketServer')
    const appsCookie = fastify.hasPlugin('@fastify/cookie')
    // The plugin's @fastify/websocket listens to this, not to the app's server: see the onReady hook below.
    const upgrades = new EventEmitter()
    const answers = new AnswersInFlight()
    await fastify.register(async (scope) => {
      if (cookies && !appsCookie) await scope.register(fastifyCookie)
      if (!appsWebsocket) await scope.register(fastifyWebsocket, { options: { server: upgrades as unknown as Server } })
      sockets.takeUpgradesFrom(scope.websocketServer)
      // The URLs the router has for them, as Fastify joins prefix and path; a route at the prefix itself may also have
      // its twin with a trailing slash, which Fastify adds without telling onRoute.
      scope.addHook('onRoute', (route) => {
        if (!route.websocket || route.method !== 'GET') return
        this.#paths.add(route.url)
        if (route.routePath === '' && slashTwin(route.prefix, fastify.initialConfig)) this.#paths.add(`${route.url}/`)
      })
      scope.addHook('onRequest', unaddressedClientsWarning(fastify.log))
      // Only where Fastify cuts busy connections: the others close once their answer is sent (Connection: close).
      if (fastify.initialConfig.forceCloseConnections === true) scope.addHook('onRequest', answers.track)
      // An answer sent once the app closes says the connection closes, as Fastify's to a request that came after (an
      // HTTP/2 stream has no such header). Node closes only the connections idle when the server stops listening: a
      // pooled one (a proxy's) busy with a login then stays open after its answer, holding the close 72 s.
      scope.addHook('onSend', (request, reply, payload, done) => {
        if (this.#closing && request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
        done(null, payload)
      })
      for (const add of this.#routes) add(scope)
    }, registered)

    let forward: Forward | undefined
    const closingLeftOnes = () => {
      if (!fastify.server.listeners('upgrade').includes(closeIfLeft)) fastify.server.prependListener('upgrade', closeIfLeft)
    }
    if (appsWebsocket) fastify.addHook('onReady', async () => closingLeftOnes())
    else {
      fastify.addHook('onReady', async () => {
        // A @fastify/websocket the app registered after the plugin listens to the app's upgrades and routes them, the
        // plugin's with the rest: a second listener would route each upgrade twice.
        if (fastify.hasDecorator('websocketServer')) return closingLeftOnes()
        const ours = upgradePaths(this.#paths, fastify.initialConfig, urlRewrite(fastify))
        forward = (request, socket, head) => {
          // Every @fastify/websocket listening to the server routes each upgrade through the whole app, whichever scope
          // registered it: one the app registered in a scope of its own, or another instance of the plugin (under
          // another prefix), listened first and has routed this one, the plugin's routes included. Routing it again
          // would fail (a warning, `websocket upgrade failed`, for every socket): it is only watched.
          const response = responseOf(socket)
          const routed = response?.req === request
          // Only beside a listener of the app's is the URL matched (the app's `rewriteUrl` run once more for it).
          if (!routed && !routesOthers(fastify.server, forward!) && !ours(request)) return
          // A request pipelined before it holds the connection (its response is the socket's): routed now, the upgrade
          // would fail to take it. Once that one is answered, the upgrade is.
          if (response && !routed) {
            response.once('finish', () => forward!(request, socket, head))
            return
          }
          // Once the app closes, every @fastify/websocket has stopped listening: nothing else would answer it, and beside
          // a listener of the app's its connection would hold app.close() until its client left.
          if (this.#closing) {
            if (!routed) refuseUpgradeOn(socket, { code: 'SERVICE_UNAVAILABLE' })
            return
          }
          routeWatched(socket, () => { if (!routed) upgrades.emit('upgrade', request, socket, head) })
        }
        forwarders.add(forward)
        fastify.server.on('upgrade', forward)
      })
    }
    // Before onClose, where the stores close: the checks in flight still reach them.
    fastify.addHook('preClose', async () => {
      // The forwarder stays, to answer the plugin's upgrades 503 until the server stops listening.
      this.#closing = true
      fastify.server.off('upgrade', closeIfLeft)
      await Promise.all([sockets.close(), answers.sent(this.#answerWithinMs)])
    })
    // Fastify's server closed (its own onClose comes first): the server is the app's to keep (serverFactory).
    fastify.addHook('onClose', async () => { if (forward) fastify.server.off('upgrade', forward) })
  }
}
