// Message handlers with a schema: validated by the app's own validator compiler before the handler is called, a
// message that fails answered INVALID_PAYLOAD naming the failing path; handler tables checked at registration.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifySchemaCompiler } from 'fastify'
import realtime, { InvalidConfigError, type MessageHandlers, type RealtimeMessage, type ValidatedMessageHandler } from '../../lib/index.js'
import { build, connect, secret } from '../helpers.js'

const invalid = (type: string, message: string, uid?: string | number) =>
  uid === undefined
    ? { type, status: 'error', error: { code: 'INVALID_PAYLOAD', message } }
    : { type, status: 'error', error: { code: 'INVALID_PAYLOAD', message }, uid }

const internal = (type: string, uid: string | number) =>
  ({ type, status: 'error', error: { code: 'INTERNAL_SERVER_ERROR', message: 'An unexpected error occurred.' }, uid })

/** Logs at error level, collected. */
function errorLog () {
  const lines: string[] = []
  return { lines, logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } }
}

t.test("a message that fails its handler's schema answers INVALID_PAYLOAD naming the path, and the socket stays open", async t => {
  const received: RealtimeMessage[] = []
  const rename: ValidatedMessageHandler<{ data: { name: string, tags: string[] } }> = {
    schema: {
      type: 'object',
      required: ['data'],
      properties: {
        data: {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' }, default: [] } }
        }
      }
    },
    handler (message, connection) {
      received.push(message)
      connection.send({ type: 'rename', uid: message.uid, name: message.data.name, tags: message.data.tags })
    }
  }
  const { url } = await build(t, { rest: { auth: 'public', handlers: { rename } } })
  const client = await connect(url('/websocket'))

  client.send({ type: 'rename', uid: 1, data: { name: { first: 'Ada' } } })
  t.same(await client.next(), invalid('rename', '"/data/name" must be string.', 1))
  client.send({ type: 'rename', uid: 'two' })
  t.same(await client.next(), invalid('rename', "The message must have required property 'data'.", 'two'))
  client.send({ type: 'rename', data: { name: 'x', tags: { a: 1 } } })
  t.same(await client.next(), invalid('rename', '"/data/tags" must be array.'), 'without a uid, none is echoed')
  t.equal(received.length, 0, 'the handler never saw an invalid message')

  // Fastify's default Ajv options apply, as to a body: defaults filled in, scalars coerced.
  client.send({ type: 'rename', uid: 3, data: { name: 'Ada' } })
  t.same(await client.next(), { type: 'rename', uid: 3, name: 'Ada', tags: [] })
  client.send({ type: 'rename', uid: 4, data: { name: 42, tags: 'a' } })
  t.same(await client.next(), { type: 'rename', uid: 4, name: '42', tags: ['a'] })
  t.same(received, [{ type: 'rename', uid: 3, data: { name: 'Ada', tags: [] } }, { type: 'rename', uid: 4, data: { name: '42', tags: ['a'] } }])
  await client.close()
})

t.test("the app's Ajv options and shared schemas apply to message schemas", async t => {
  const app = Fastify({ ajv: { customOptions: { allErrors: true, coerceTypes: false } } })
  app.addSchema({ $id: 'coordinate', type: 'integer', minimum: 0 })
  await app.register(realtime, {
    env: {},
    secret,
    rest: {
      auth: 'public',
      handlers: {
        move: {
          schema: { type: 'object', required: ['x', 'y'], properties: { x: { $ref: 'coordinate#' }, y: { $ref: 'coordinate#' } } },
          handler: (message, connection) => connection.send({ type: 'moved', uid: message.uid })
        }
      }
    }
  })
  const url = await listening(t, app)
  const client = await connect(url('/websocket'))

  client.send({ type: 'move', uid: 1, x: -1, y: '2' })
  t.same(await client.next(), invalid('move', '"/x" must be >= 0, "/y" must be integer.', 1), 'every error (allErrors), no coercion')
  client.send({ type: 'move', uid: 2, x: 1, y: 2 })
  t.same(await client.next(), { type: 'moved', uid: 2 })
  await client.close()
})

/** Listens on a random loopback port; closed at the end of the test. */
async function listening (t: Test, app: FastifyInstance): Promise<(path: string) => string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return (path) => `ws://127.0.0.1:${port}${path}`
}

t.test("the app's own validator compiler validates messages, compiled once per schema, its results read as Fastify reads them", async t => {
  const compiled: unknown[] = []
  const app = Fastify()
  // A compiler in the style of the zod and TypeBox type providers: { error } or { value }.
  app.setValidatorCompiler(({ schema, url }) => {
    compiled.push({ schema, url })
    const validate = (message: { outcome?: string, uid?: number }) => {
      switch (message.outcome) {
        case 'error': return { error: new Error('The text is too long.') }
        case 'errors': return { error: [{ instancePath: '/text', keyword: 'maxLength', message: 'must be shorter' }, { instancePath: '', keyword: 'x' }] }
        case 'false': return false
        case 'parsed': return { value: { type: 'parsed', uid: message.uid, parsed: true } }
        case 'empty': return {}
        default: return true
      }
    }
    return Object.assign(validate, { errors: null }) as ReturnType<FastifySchemaCompiler<unknown>>
  })
  const schema = { custom: true }
  const seen: RealtimeMessage[] = []
  await app.register(realtime, {
    env: {},
    secret,
    rest: { auth: 'public', handlers: { post: { schema, handler: (message, connection) => { seen.push(message); connection.send({ type: 'done', uid: message.uid }) } } } }
  })
  const url = await listening(t, app)
  const client = await connect(url('/websocket'))
  const other = await connect(url('/websocket'))

  client.send({ type: 'post', uid: 1, outcome: 'error' })
  t.same(await client.next(), invalid('post', 'The text is too long.', 1))
  client.send({ type: 'post', uid: 2, outcome: 'errors' })
  t.same(await client.next(), invalid('post', '"/text" must be shorter, The message is invalid.', 2))
  client.send({ type: 'post', uid: 3, outcome: 'false' })
  t.same(await client.next(), invalid('post', 'The message is invalid.', 3))
  client.send({ type: 'post', uid: 4, outcome: 'parsed' })
  t.same(await client.next(), { type: 'done', uid: 4 })
  client.send({ type: 'post', uid: 5, outcome: 'empty' })
  t.same(await client.next(), { type: 'done', uid: 5 })
  other.send({ type: 'post', uid: 6 })
  t.same(await other.next(), { type: 'done', uid: 6 })
  t.same(seen, [
    { type: 'parsed', uid: 4, parsed: true },
    { type: 'post', uid: 5, outcome: 'empty' },
    { type: 'post', uid: 6 }
  ], 'the value a compiler hands back is the message')
  t.same(compiled, [{ schema, url: '/websocket' }], 'compiled once, for the route, whatever the sockets and messages')
  await Promise.all([client.close(), other.close()])
})

t.test('a schema the compiler refuses, or an asynchronous one, answers INTERNAL_SERVER_ERROR and is logged', async t => {
  const log = errorLog()
  const called: string[] = []
  const { url } = await build(t, {
    rest: {
      auth: 'public',
      handlers: {
        broken: { schema: { type: 'nope' }, handler: () => { called.push('broken') } },
        later: { schema: { $async: true, type: 'object' }, handler: () => { called.push('later') } }
      }
    }
  }, { logger: log.logger })
  const client = await connect(url('/websocket'))
  client.send({ type: 'broken', uid: 1 })
  t.same(await client.next(), internal('broken', 1))
  client.send({ type: 'later', uid: 2 })
  t.same(await client.next(), internal('later', 2))
  t.same(called, [])
  t.match(log.lines.join(''), /schema is invalid/)
  t.match(log.lines.join(''), /must validate synchronously/)
  client.send({ type: 'ping', uid: 3 })
  t.same(await client.next(), { type: 'pong', uid: 3 }, 'the socket stays open')
  await client.close()
})

/** The error registering the plugin with these handlers fails with. */
async function bootError (handlers: unknown): Promise<unknown> {
  const app = Fastify()
  try {
    await app.register(realtime, { env: {}, secret, rest: { handlers: handlers as MessageHandlers } })
    return null
  } catch (err) {
    return err
  } finally {
    await app.close()
  }
}

t.test('a handler for auth, ping or pong fails boot, naming it: the plugin answers those itself', async t => {
  for (const type of ['auth', 'ping', 'pong']) {
    const err = await bootError({ [type]: () => {} })
    t.ok(err instanceof InvalidConfigError, type)
    t.match(err, {
      code: 'FST_REALTIME_INVALID_CONFIG',
      message: `Invalid configuration: rest.handlers.${type}: the plugin answers "${type}" messages itself (and "auth", "ping", "pong"); give the handler another type`
    })
  }
})

t.test('a handler that is neither a function nor { schema, handler } fails boot, naming it', async t => {
  const malformed = [1, null, { handler () {} }, { schema: null, handler () {} }, { schema: {}, handler: 'nope' }]
  for (const entry of malformed) {
    t.match(await bootError({ fine: () => {}, chat: entry }), {
      code: 'FST_REALTIME_INVALID_CONFIG',
      message: 'Invalid configuration: rest.handlers.chat must be a function, or { schema, handler } with a schema object and a function'
    }, JSON.stringify(entry) ?? String(entry))
  }
  t.equal(await bootError({ chat: () => {}, typed: { schema: {}, handler () {} } }), null, 'both forms boot')
})
