// RealtimeError with the application's own codes, shaped as a FastifyError; the boot errors, exported.
import t from 'tap'
import Fastify from 'fastify'
import realtime, { InvalidConfigError, RealtimeError } from '../../lib/index.js'
import { admin, build, connect, directoryOf, secret } from '../helpers.js'

t.test("a handler's RealtimeError with the application's own code is the error frame's code", async t => {
  const { url } = await build(t, {
    rest: {
      auth: 'public',
      handlers: {
        join: () => { throw new RealtimeError('ROOM_FULL', 'The room is full.') },
        leave: async () => { throw new RealtimeError('NOT_A_MEMBER', 'You are not in the room.', { statusCode: 409 }) }
      }
    }
  })
  const client = await connect(url('/websocket'))
  client.send({ type: 'join', uid: 1 })
  t.same(await client.next(), { type: 'join', status: 'error', error: { code: 'ROOM_FULL', message: 'The room is full.' }, uid: 1 })
  client.send({ type: 'leave', uid: 2 })
  t.same(await client.next(), { type: 'leave', status: 'error', error: { code: 'NOT_A_MEMBER', message: 'You are not in the room.' }, uid: 2 })
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' }, 'the socket stays open')
  await client.close()
})

t.test("RealtimeError's status: the table's for the plugin's codes, the application's own for its codes", async t => {
  t.match(new RealtimeError('FORBIDDEN', 'no'), { name: 'RealtimeError', code: 'FORBIDDEN', message: 'no', statusCode: 403 })
  t.equal(new RealtimeError('INVALID_PAYLOAD', 'bad').statusCode, 400)
  t.equal(new RealtimeError('REQUESTS_EXCEEDED', 'slow down').statusCode, 429)
  t.equal(new RealtimeError('AUTH_REVOKED', 'gone').statusCode, undefined, 'a failure only a socket hears has none')
  t.equal(new RealtimeError('ROOM_FULL', 'full').statusCode, undefined)
  t.equal(new RealtimeError('ROOM_FULL', 'full', { statusCode: 409 }).statusCode, 409)
  t.equal(new RealtimeError('FORBIDDEN', 'no', { statusCode: 404 }).statusCode, 404, 'the application may say otherwise')
  t.equal(new RealtimeError('constructor', 'x').statusCode, undefined, "a code named after Object.prototype's is the application's")
  const cause = new Error('the store is down')
  t.equal(new RealtimeError('ROOM_FULL', 'full', { cause }).cause, cause)
  t.notOk('cause' in new RealtimeError('ROOM_FULL', 'full'))
  t.ok(new RealtimeError('ROOM_FULL', 'full') instanceof Error)
})

t.test("a RealtimeError thrown from the app's HTTP route answers with its status through Fastify's error handler", async t => {
  const app = Fastify()
  await app.register(realtime, { env: {}, secret, users: await directoryOf([admin]) })
  app.post('/my-login', async (request) => app.realtime.login(request.body as { email: string, password: string }))
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'POST', url: '/my-login', payload: { email: admin.email, password: 'wrong' } })
  t.equal(response.statusCode, 401)
  t.same(response.json(), { statusCode: 401, code: 'INVALID_CREDENTIALS', error: 'Unauthorized', message: 'Invalid user credentials.' })
})

t.test("login() from the app's own route, given a body without an email or a password: 401 as for a wrong one, nothing logged", async t => {
  // `return app.realtime.login(request.body, request)`, as the README writes it: a field left out threw a TypeError
  // (reading its `length`), answered 500 with an error line and its stack for every such request.
  const logged: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { logged.push(line) } } } })
  await app.register(realtime, { env: {}, secret, users: await directoryOf([admin]) })
  app.post('/my-login', async (request) => app.realtime.login(request.body as { email: string, password: string }, request))
  t.teardown(() => app.close())
  for (const body of ['{}', JSON.stringify({ email: admin.email }), JSON.stringify({ password: admin.password }), 'null', '"x"', '[]']) {
    const response = await app.inject({ method: 'POST', url: '/my-login', payload: body, headers: { 'content-type': 'application/json' } })
    t.equal(response.statusCode, 401, body)
    t.match(response.json(), { code: 'INVALID_CREDENTIALS' }, body)
  }
  t.same(logged, [], 'no error logged')
  t.equal((await app.inject({ method: 'POST', url: '/my-login', payload: admin })).statusCode, 200, 'the right one still logs in')
})

t.test("login()'s 429 and 503 from the app's own route carry their Retry-After, as /auth/login's do", async t => {
  // Fastify's error handler sends an error's `headers`: the app's route needs no handler of its own to tell the client
  // when to come back.
  let storeDown = false
  const directory = await directoryOf([admin])
  const app = Fastify()
  await app.register(realtime, {
    env: {},
    secret,
    attemptLimit: { points: 1, durationSeconds: 60 },
    verifyCredentials: async (credential) => {
      if (storeDown) throw new Error('the directory is down')
      return directory.verifyCredentials(credential)
    }
  })
  app.post('/my-login', async (request) => app.realtime.login(request.body as { email: string, password: string }, request))
  t.teardown(() => app.close())
  const login = (password: string) => app.inject({ method: 'POST', url: '/my-login', payload: { email: admin.email, password } })
  t.equal((await login('wrong')).statusCode, 401)
  const limited = await login('wrong')
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { code: 'REQUESTS_EXCEEDED', message: /^Too many requests, retry after \d+ms\.$/ })
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After in seconds, within the window (${limited.headers['retry-after']})`)
  storeDown = true
  const unavailable = await app.inject({ method: 'POST', url: '/my-login', payload: { email: 'someone@example.com', password: 'x' }, remoteAddress: '192.0.2.7' })
  t.equal(unavailable.statusCode, 503)
  t.equal(unavailable.headers['retry-after'], '1')
})

t.test('boot errors are @fastify/error classes with a stable code, exported', async t => {
  const app = Fastify()
  const err = await app.register(realtime, { env: {} }).ready().then(() => null, (err: unknown) => err)
  await app.close()
  t.ok(err instanceof InvalidConfigError)
  t.match(err, { name: 'FastifyError', code: 'FST_REALTIME_INVALID_CONFIG', statusCode: 500, message: /^Invalid configuration: SECRET/ })
  t.equal(String(err), `FastifyError [FST_REALTIME_INVALID_CONFIG]: ${(err as Error).message}`)
})
