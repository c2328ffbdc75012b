// Type tests of message handlers, their schemas, RealtimeError's codes and durations: checked by `tsc --noEmit`
// (npm test), never run.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import realtime, {
  InvalidConfigError, RealtimeError,
  type Accountability, type MessageContext, type MessageHandler, type MessageHandlers, type RealtimeConnection, type RealtimeErrorCode, type RealtimeMessage, type ValidatedMessageHandler,
  type WireErrorCode
} from '../lib/index.js'

const app = Fastify()
const chatSchema = {
  type: 'object',
  required: ['text'],
  properties: { text: { type: 'string' } }
} as const

// A schema and a handler: without a type argument the message is any message.
await app.register(realtime, {
  rest: {
    handlers: {
      chat: {
        schema: chatSchema,
        handler (message, connection, context) {
          expectTypeOf(message).toEqualTypeOf<RealtimeMessage>()
          expectTypeOf(connection).toEqualTypeOf<RealtimeConnection>()
          expectTypeOf(context).toEqualTypeOf<MessageContext>()
        }
      },
      plain: (message) => { expectTypeOf(message).toEqualTypeOf<RealtimeMessage>() },
      // The accountability it was called as, the signal that aborts when that ends, and a send that stops with it.
      slow: async (_message, _connection, { accountability, signal, send }) => {
        expectTypeOf(accountability).toEqualTypeOf<Accountability>()
        expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
        expectTypeOf(send).toEqualTypeOf<(message: object) => void>()
      }
    }
  }
})

// With a type argument, the message is the one the schema guarantees, with the envelope every message has.
const chat: ValidatedMessageHandler<{ type: 'chat', text: string, to?: string[] }> = {
  schema: chatSchema,
  async handler (message, connection, context) {
    expectTypeOf(context).toEqualTypeOf<MessageContext>()
    expectTypeOf(message.type).toEqualTypeOf<'chat'>()
    expectTypeOf(message.text).toEqualTypeOf<string>()
    expectTypeOf(message.to).toEqualTypeOf<string[] | undefined>()
    expectTypeOf(message.uid).toEqualTypeOf<string | number | undefined>()
    connection.send({ type: 'chat', uid: message.uid, text: message.text })
  }
}
// An interface as well as a type literal.
interface Move { x: number, y: number }
const move: ValidatedMessageHandler<Move> = {
  schema: { type: 'object', required: ['x', 'y'], properties: { x: { type: 'number' }, y: { type: 'number' } } },
  handler (message) { expectTypeOf(message.x).toEqualTypeOf<number>() }
}
await app.register(realtime, { rest: { handlers: { chat, move } } })
expectTypeOf({ chat, move }).toMatchTypeOf<MessageHandlers>()

// The plugin answers auth, ping and pong itself: a handler for them would never be called.
// @ts-expect-error: auth is the plugin's
await app.register(realtime, { rest: { handlers: { auth: () => {} } } })
// @ts-expect-error: ping is the plugin's
await app.register(realtime, { rest: { handlers: { ping: { schema: chatSchema, handler () {} } } } })
// @ts-expect-error: pong is the plugin's
await app.register(realtime, { rest: { handlers: { pong: chat } } })
// @ts-expect-error: an object handler comes with its schema (a function alone is the handler without one)
await app.register(realtime, { rest: { handlers: { x: { handler () {} } } } })
// @ts-expect-error: a message is typed only where a schema guarantees it
await app.register(realtime, { rest: { handlers: { x: (message: { text: string }) => { expectTypeOf(message).toBeObject() } } } })

// RealtimeError: the plugin's codes, and the application's own.
expectTypeOf(new RealtimeError('FORBIDDEN', 'no').code).toEqualTypeOf<RealtimeErrorCode>()
expectTypeOf<WireErrorCode>().toMatchTypeOf<RealtimeErrorCode>()
expectTypeOf(new RealtimeError('ROOM_FULL', 'The room is full.', { statusCode: 409 }).statusCode).toEqualTypeOf<number | undefined>()
new RealtimeError('ROOM_FULL', 'The room is full.', { cause: new Error('x') }) // eslint-disable-line no-new
// @ts-expect-error: a code is a string
new RealtimeError(409, 'The room is full.') // eslint-disable-line no-new

// Boot errors are @fastify/error classes with a stable code.
expectTypeOf(new InvalidConfigError('SECRET is required').code).toEqualTypeOf<'FST_REALTIME_INVALID_CONFIG'>()
expectTypeOf(new InvalidConfigError('SECRET is required').statusCode).toEqualTypeOf<500>()
expectTypeOf(new InvalidConfigError('x')).toMatchTypeOf<Error>()

// Durations are milliseconds or what `ms` reads.
await app.register(realtime, { accessTokenTtl: '15m', refreshTokenTtl: '7 days', cookies: { session: { ttl: 86_400_000 } } })
await app.register(realtime, { accessTokenTtl: '1.5h', refreshTokenTtl: '2 Weeks', cookies: { session: { ttl: '12H' } } })
await app.register(realtime, { accessTokenTtl: '900000' })
// @ts-expect-error: not a duration
await app.register(realtime, { accessTokenTtl: '15 mins please' })
// @ts-expect-error: not a duration
await app.register(realtime, { refreshTokenTtl: 'a week' })
// @ts-expect-error: not a duration
await app.register(realtime, { cookies: { session: { ttl: 'tomorrow' } } })

// The context is read-only: a handler cannot swap the accountability it was called as.
const readOnly: MessageHandler = (_message, _connection, context) => {
  // @ts-expect-error: accountability is read-only
  context.accountability = { ...context.accountability }
}
expectTypeOf(readOnly).toEqualTypeOf<MessageHandler>()
