// Reaching the sockets of one user or one session: the registry visits those alone, however many others are open.
import t from 'tap'
import { ConnectionIndex } from '../../lib/connection/connection-index.js'
import { Registry } from '../../lib/connection/registry.js'
import { RealtimeEvents } from '../../lib/events.js'
import type { Connection } from '../../lib/connection/connection.js'

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
  const open = (user: string, session?: string) => {
    const guard = { registered () {} }
    const connection = { endpoint: 'rest', pin () {} } as unknown as Connection
    Object.defineProperty(guard, 'user', { get: () => { reads++; return user } })
    Object.defineProperty(guard, 'session', { get: () => { reads++; return session } })
    Object.defineProperty(connection, 'guard', { value: guard })
    registry.add(connection)
    return connection
  }
  for (let i = 0; i < 1000; i++) open(`user-${i}`, `session-${i}`)
  const alice = [open('alice', 's-1'), open('alice', 's-2')]
  reads = 0
  t.same(registry.list({ user: 'alice' }), alice)
  t.same(registry.list({ session: 's-2' }), [alice[1]])
  t.same(registry.list({ user: 'alice', session: 's-1' }), [alice[0]])
  t.same(registry.list({ user: 'nobody' }), [])
  t.ok(reads <= 10, `${reads} reads of a socket's user or session, for 5 matches among 1,002 sockets`)
  t.equal(registry.list({}).length, 1002, 'no filter: every socket')
  t.equal(registry.list({ user: null } as never).length, 0, 'a filter that is no string walks every socket, as before')
  t.equal(registry.list({ session: null } as never).length, 0)
})

t.test('a socket that closes leaves no key behind in either index', async t => {
  const registry = new Registry(new RealtimeEvents(silent))
  const guard = { user: 'alice', session: 's-1', registered () {} }
  const connection = { endpoint: 'rest', guard, pin () {} } as unknown as Connection
  registry.add(connection)
  registry.delete(connection, 1000)
  registry.index(connection, 'alice', 's-1')
  t.same(registry.list({ user: 'alice' }), [], 'gone, and not found again by a guard that reports after the close')
  t.same(registry.list({ session: 's-1' }), [])
})
