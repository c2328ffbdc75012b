// Reaching the sockets of one user or one session: the registry visits those alone, however many others are open,
// and its indexes follow each socket's guard.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { ConnectionIndex } from '../../lib/connection/connection-index.js'
import { Registry } from '../../lib/connection/registry.js'
import { Connection } from '../../lib/connection/connection.js'
import { guardPolicy, type GuardEvents } from '../../lib/connection/guard.js'
import { Outbound } from '../../lib/connection/outbound.js'
import { RealtimeEvents } from '../../lib/events.js'
import type { AuthSuccess } from '../../lib/auth/authenticator.js'

const silent = { error () {}, warn () {} } as never

t.test('one socket is kept as itself, several as a set that may lose sockets while it is walked', async t => {
  const index = new ConnectionIndex()
  const [a, b, c] = ['a', 'b', 'c'].map(name => ({ name }) as unknown as Connection)
  t.same([...index.get('u')], [], 'nobody')
  index.add('u', a)
  index.add('u', a)
  t.same([...index.get('u')], [a], 'added twice, kept once')
  index.add('u', b)
  index.add('u', c)
  const walked: Connection[] = []
  for (const connection of index.get('u')) {
    walked.push(connection)
    index.delete('u', connection)
  }
  t.same(walked, [a, b, c], 'each visited once while each is taken out')
  t.equal(index.size, 0, 'an emptied key is gone')
  index.add('u', a)
  index.delete('u', b)
  index.delete('v', a)
  t.same([...index.get('u')], [a], 'taking out what is not there changes nothing')
  index.delete('u', a)
  t.equal(index.size, 0)
})

t.test('a user or session filter reads no other socket than that key\'s', async t => {
  const registry = new Registry(new RealtimeEvents(silent))
  let reads = 0
  const open = (user: string | null, session?: string) => {
    const connection = { endpoint: 'rest', open: true, pin () {} } as unknown as Connection
    const guard = { registered: () => { if (user !== null) registry.index(connection, user, session) } }
    Object.defineProperty(guard, 'user', { get: () => { reads++; return user } })
    Object.defineProperty(guard, 'session', { get: () => { reads++; return session } })
    Object.defineProperty(connection, 'guard', { value: guard })
    registry.add(connection)
    return connection
  }
  for (let i = 0; i < 1000; i++) open(`user-${i}`, `session-${i}`)
  const alice = [open('alice', 's-1'), open('alice', 's-2')]
  const anonymous = open(null)
  reads = 0
  t.same(registry.list({ user: 'alice' }), alice)
  t.same(registry.list({ session: 's-2' }), [alice[1]])
  t.same(registry.list({ user: 'alice', session: 's-1' }), [alice[0]])
  t.same(registry.list({ user: 'nobody' }), [])
  t.equal(reads, 8, 'four filters, four matching sockets read, none of the other 999 authenticated ones')
  t.equal(registry.list({}).length, 1003, 'no filter: every socket')
  t.same(registry.list({ user: null } as never), [anonymous], 'a filter that is no string walks every socket, as before')
  t.same(registry.list({ session: null } as never), [], 'no socket has a null session')
})

t.test('the indexes follow a socket\'s guard through every change of credential, and forget it when it closes', async t => {
  const registry = new Registry(new RealtimeEvents(silent))
  const policy = guardPolicy('handshake', null, 10_000, silent, registry)
  const request = { headers: {}, raw: { socket: null } } as unknown as FastifyRequest
  const events: GuardEvents = { onExpire () {}, onAuthTimeout () {} }
  const success = (user: string, session?: string): AuthSuccess =>
    ({ ok: true, identity: { user, role: null, admin: false }, session, expiresAt: Date.now() + 60_000, issuedAt: 0 })
  const open = (upgrade: AuthSuccess | null) => {
    const connection = new Connection('rest', {} as WebSocket, request, new Outbound(1024), policy, events, upgrade)
    registry.add(connection)
    return connection
  }
  const reach = (filter: { user?: string, session?: string }) => registry.list(filter).length

  const upgraded = open(success('carol', 's-c'))
  t.same(registry.indexed, { users: 1, sessions: 1 }, 'authenticated on the upgrade request')
  const socket = open(null)
  t.same(registry.indexed, { users: 1, sessions: 1 }, 'in its handshake: nobody yet')
  socket.guard.authenticate(success('dave', 's-d'))
  socket.guard.authenticate(success('erin', 's-e'))
  t.same([reach({ user: 'dave' }), reach({ session: 's-d' }), reach({ user: 'erin', session: 's-e' })], [0, 0, 1])
  t.same(registry.indexed, { users: 2, sessions: 2 }, 'authenticated anew: the first user and session let go')
  registry.revokeSession('s-e')
  t.same(registry.indexed, { users: 1, sessions: 1 }, 'its session revoked')
  socket.guard.authenticate(success('frank'))
  t.same(registry.indexed, { users: 2, sessions: 1 }, 'a token without a session')
  socket.guard.refuse({ ok: false, code: 'AUTH_FAILED', reason: 'a bad token' })
  t.same(registry.indexed, { users: 1, sessions: 1 }, 'refused: public')
  socket.guard.authenticate(success('gina', 's-g'))
  registry.revokeUser('gina', Date.now())
  t.same(registry.indexed, { users: 1, sessions: 1 }, 'its user revoked')
  socket.guard.authenticate(success('hal', 's-h'))
  for (const connection of [upgraded, socket]) {
    connection.guard.close()
    registry.delete(connection, 1000)
  }
  t.same(registry.indexed, { users: 0, sessions: 0 }, 'closed: nothing kept')
  upgraded.guard.authenticate(success('late', 's-l'))
  t.same(registry.indexed, { users: 0, sessions: 0 }, 'a closed guard indexes nothing')
})
