// What an app's message handler hands back when it fails: any thenable's rejection is answered and counted against the
// socket's handlers (a library's promise, another realm's), a RealtimeError of either copy of the package keeps its
// code, and a handler that throws on what a client sends is logged once a minute, not once a frame.
import t, { type Test } from 'tap'
import vm from 'node:vm'
import Fastify from 'fastify'
import realtime, { RealtimeError } from '../../lib/index.js'
import { handlerLimit } from '../../lib/endpoints/rest.js'
import type { MessageHandler } from '../../types/index.js'
import { connect, fakeClock, secret, until, within } from '../helpers.js'

/** A listening app whose JSON endpoint (public) has `handlers`; its error-level log lines, parsed. */
async function start (t: Test, handlers: Record<string, MessageHandler>) {
  const errors: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { errors.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public', handlers }, heartbeat: { enabled: false } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`)
  t.teardown(() => client.close())
  return { client, errors }
}

const internal = (type: string, uid: string) => ({ type, status: 'error', error: { code: 'INTERNAL_SERVER_ERROR', message: 'An unexpected error occurred.' }, uid })

t.test('a rejected thenable that is no native Promise is answered and logged, as a native rejection is', async t => {
  const otherRealm = vm.runInNewContext('Promise') as PromiseConstructor
  const { client, errors } = await start(t, {
    realm: () => otherRealm.reject(new Error('database down')) as unknown as Promise<void>,
    thenable: () => ({ then: (_resolve: unknown, reject: (err: Error) => void) => { reject(new Error('query failed')) } }) as unknown as Promise<void>
  })
  client.send({ type: 'realm', uid: 'r' })
  t.same(await client.next(), internal('realm', 'r'), 'another realm\'s promise')
  client.send({ type: 'thenable', uid: 't' })
  t.same(await client.next(), internal('thenable', 't'), 'a library\'s thenable')
  t.match(errors, [{ msg: 'realtime message handler failed', type: 'realm', err: { message: 'database down' } }, { type: 'thenable' }])
})

t.test(`another realm's pending promises count against the ${handlerLimit} handlers of a socket`, async t => {
  const OtherRealmPromise = vm.runInNewContext('Promise') as PromiseConstructor
  let started = 0
  const release: Array<() => void> = []
  const { client } = await start(t, {
    slow: (message, connection) => {
      started++
      return new OtherRealmPromise<void>(resolve => { release.push(() => { connection.send({ type: 'done', uid: message.uid }); resolve() }) }) as Promise<void>
    }
  })
  for (let i = 0; i < handlerLimit + 10; i++) client.send({ type: 'slow', uid: i })
  client.send({ type: 'ping', uid: 'ping' })
  // The ping is answered only once the socket reads past the limit: while it waits, the other 10 wait too.
  await until(() => started >= handlerLimit)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(started, handlerLimit, 'the rest wait')
  while (release.length > 0) release.shift()!()
  const answers: unknown[] = []
  while (answers.length < handlerLimit + 11) {
    answers.push(await within(client.next(), 'an answer'))
    while (release.length > 0) release.shift()!()
  }
  t.equal(started, handlerLimit + 10, 'all ran in the end')
})

t.test('a RealtimeError of another copy of the package (its CommonJS one, say) keeps its code', async t => {
  const copy = await import(`../../lib/errors.js?copy=${Date.now()}`) as typeof import('../../lib/errors.js')
  t.not(copy.RealtimeError, RealtimeError, 'another class')
  const { client, errors } = await start(t, { join: () => { throw new copy.RealtimeError('ROOM_FULL', 'The room is full.') } })
  client.send({ type: 'join', uid: 1 })
  t.same(await client.next(), { type: 'join', status: 'error', error: { code: 'ROOM_FULL', message: 'The room is full.' }, uid: 1 })
  t.same(errors, [], 'no failure logged')
  t.ok(new copy.RealtimeError('X', 'x') instanceof RealtimeError, 'either copy\'s is a RealtimeError')
  t.notOk(new Error('x') instanceof RealtimeError, 'another error is none')
  class RoomError extends RealtimeError {}
  t.notOk(new RealtimeError('X', 'x') instanceof RoomError, 'a subclass checks as any class does')
  t.ok(new RoomError('X', 'x') instanceof RealtimeError)
})

t.test('a handler that throws on every frame a client sends is logged once a minute, with how many went unlogged', async t => {
  const clock = fakeClock(t, ['Date'])
  const { client, errors } = await start(t, {
    rename: (message) => { (message as unknown as { data: { name: string } }).data.name.trim() }
  })
  for (let i = 0; i < 5; i++) {
    client.send({ type: 'rename', uid: String(i) })
    t.same(await client.next(), internal('rename', String(i)), `frame ${i}: answered`)
  }
  t.equal(errors.length, 1, 'one line for five failures')
  clock.tick(60_000)
  client.send({ type: 'rename', uid: 'later' })
  await client.next()
  t.match(errors, [{ type: 'rename' }, { type: 'rename', unlogged: 4 }], 'a minute later, the next, with the count')
})
