// The GraphQL endpoint (`/graphql`, PROTOCOL.md section 5): graphql-ws's protocol core (`makeServer`) over the
// @fastify/websocket socket. graphql-ws speaks graphql-transport-ws, the only thing ever sent here; this adapter
// decides who is let in at `connection_init`, keeps the socket's guard, and ends the socket when its credential ends.
import type { FastifyRequest } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import { isSchema } from 'graphql'
import { CloseCode as GraphqlCloseCode, makeServer } from 'graphql-ws'
import type { Authenticator } from '../auth/authenticator.js'
import { CloseCode, InvalidConfigError } from '../errors.js'
import { Connection } from '../connection/connection.js'
import { ConnectionGuard } from '../connection/guard.js'
import type { Registry } from '../connection/registry.js'
import { clientInfo, upgradeCredential } from './upgrade.js'
import { operationPreparer, type OperationOptions } from './graphql-operation.js'
import type { AdapterOptions } from './adapter.js'

export interface GraphqlAdapterOptions extends AdapterOptions {
  operations: OperationOptions
}

/** A socket on the GraphQL endpoint, for the registry and the application API. */
class GraphqlConnection extends Connection {
  // The application API's JSON messages would break the protocol: graphql-ws clients close on them (4004).
  override send (): void {
    throw new TypeError('A GraphQL socket carries only graphql-transport-ws frames: send JSON messages on /websocket')
  }
}

interface Extra {
  connection: GraphqlConnection
}

type ConnectionParams = Record<string, unknown> | undefined

/**
 * `connection_init`: an `access_token` in its payload authenticates the socket, in every mode; without one, only a
 * socket past its handshake (public mode, or authenticated at the upgrade) is let in. Refused: 4403 `Forbidden`.
 */
function admit (connection: GraphqlConnection, params: ConnectionParams, authenticator: Authenticator, registry: Registry): boolean {
  const { guard } = connection
  const token = params?.access_token
  if (token === undefined || token === null) {
    if (guard.phase !== 'handshake') return true
    registry.refused(connection.endpoint, 'AUTH_FAILED', 'connection_init without access_token', connection.accountability.ip)
    return false
  }
  const result = typeof token === 'string' ? authenticator.verifyAccessToken(token) : null
  if (!result?.ok) {
    registry.refused(connection.endpoint, result?.code ?? 'AUTH_FAILED', result?.reason ?? 'access_token is not a string', connection.accountability.ip)
    guard.fail()
    return false
  }
  guard.authenticate(result)
  registry.authenticated(connection)
  return true
}

/** The websocket handler of the GraphQL endpoint. */
export function graphqlEndpoint (options: GraphqlAdapterOptions) {
  const { endpoint, authenticator, registry, log, maxPayload } = options
  const { schema } = options.operations
  if (typeof schema !== 'function' && !isSchema(schema)) {
    throw new InvalidConfigError('graphql.schema must be a GraphQLSchema or a function of the accountability returning one')
  }
  const prepare = operationPreparer(options.operations)

  const server = makeServer<ConnectionParams, Extra>({
    // One deadline for the handshake: the guard's auth timer (WEBSOCKETS_GRAPHQL_AUTH_TIMEOUT, closing 4408) runs for
    // every socket that must authenticate and dies with the guard; graphql-ws's own init timer would be a second
    // clock for the same wait, with its own default (3 s).
    connectionInitWaitTimeout: 0,
    onConnect: (ctx) => admit(ctx.extra.connection, ctx.connectionParams, authenticator, registry),
    onSubscribe: (ctx, _id, payload) => prepare(ctx.extra.connection, payload)
  })

  return function open (socket: WebSocket, request: FastifyRequest): void {
    const guard = new ConnectionGuard({
      authMode: endpoint.authMode,
      authTimeoutMs: endpoint.authTimeoutMs,
      client: clientInfo(request),
      publicRole: options.publicRole,
      events: {
        // graphql-transport-ws cannot re-authenticate in band: the socket ends, and its subscriptions with it. The
        // graphql-ws client retries on 4403, so one whose connectionParams is a function comes back with a new token.
        onExpire: (code) => {
          registry.expired(connection, code)
          guard.close() // no re-auth window to wait for
          socket.close(CloseCode.Forbidden, 'Forbidden')
        },
        onAuthTimeout: () => socket.close(CloseCode.AuthTimeout, 'Connection initialisation timeout')
      }
    }, upgradeCredential(request))
    const connection = new GraphqlConnection(endpoint.name, socket, guard)
    registry.add(connection)

    const closed = server.opened({
      protocol: socket.protocol, // graphql-ws closes 4406 unless it is graphql-transport-ws
      // ws drops what is sent on a closing socket: a subscription may still emit while its socket closes.
      send: (data) => socket.send(data),
      close: (code, reason) => socket.close(code, reason),
      onMessage: (handle) => socket.on('message', (data: RawData) => {
        // Frames behind a close (the credential ended, the handshake ran out) would run as nobody: they are dropped.
        if (socket.readyState !== socket.OPEN) return
        // ws enforces maxPayload when the plugin configured it; an app's own @fastify/websocket may allow more.
        if ((data as Buffer).byteLength > maxPayload) {
          socket.close(CloseCode.MessageTooBig)
          return
        }
        handle((data as Buffer).toString()).catch((err: unknown) => {
          // A schema or context function threw: graphql-ws's answer to an error of the server's own.
          log.error({ err }, 'graphql operation failed')
          socket.close(GraphqlCloseCode.InternalServerError, 'Internal server error')
        })
      })
    }, { connection })

    socket.once('close', (code, reason) => {
      guard.close()
      registry.delete(connection, code)
      // Ends every running subscription (their iterators' `return`).
      closed(code, reason.toString()).catch((err: unknown) => log.error({ err }, 'a graphql subscription failed to end'))
    })
  }
}
