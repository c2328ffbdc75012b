// The password-check queue: lanes, turns between addresses, and its bounds (PROTOCOL.md section 11).
import t from 'tap'
import { PasswordChecks, PasswordLanes } from '../../lib/auth/password-checks.js'

/** A check that finishes when the test says so, recording when it started. */
function held (started: string[], name: string) {
  let finish!: (value: string) => void
  let fail!: (err: Error) => void
  const done = new Promise<string>((resolve, reject) => { finish = resolve; fail = reject })
  return {
    check: () => { started.push(name); return done },
    finish: () => finish(name),
    fail: () => fail(new Error(name))
  }
}

t.test('checks wait for a lane and take turns between addresses', async t => {
  const started: string[] = []
  const queue = new PasswordChecks({ limit: 10, perAddress: 3 }, new PasswordLanes(1))
  const first = held(started, 'a1')
  const running = queue.run('192.0.2.1', first.check)
  const rest = [['192.0.2.1', 'a2'], ['192.0.2.1', 'a3'], ['192.0.2.2', 'b1'], ['192.0.2.3', 'c1'], ['192.0.2.2', 'b2']].map(([address, name]) => {
    const check = held(started, name)
    return { check, result: queue.run(address, check.check) }
  })
  t.same(started, ['a1'], 'one lane: the others wait')
  for (const { check } of rest) check.finish()
  first.finish()
  t.equal(await running, 'a1')
  t.same(await Promise.all(rest.map(({ result }) => result)), ['a2', 'a3', 'b1', 'c1', 'b2'])
  t.same(started, ['a1', 'a2', 'b1', 'c1', 'a3', 'b2'], 'an address at a time, each to the back of the line after its turn')
})

t.test('an address with a port (as some proxies forward it) takes its address\'s share', async t => {
  const queue = new PasswordChecks({ limit: 10, perAddress: 2 }, new PasswordLanes(1))
  const started: string[] = []
  const running = held(started, 'running')
  const waiting = [held(started, 'w1'), held(started, 'w2')]
  const results = [queue.run('192.0.2.1:1000', running.check), queue.run('192.0.2.1:1001', waiting[0].check), queue.run('192.0.2.1:1002', waiting[1].check)]
  const past = ['192.0.2.1:1003', '192.0.2.1'].map(ip => queue.run(ip, async () => { started.push(ip); return ip }))
  running.finish()
  for (const check of waiting) check.finish()
  t.same(await Promise.all(results), ['running', 'w1', 'w2'])
  await t.rejects(past[0], { name: 'PasswordQueueFull' }, 'the address has two waiting, whatever its port')
  await t.rejects(past[1], { name: 'PasswordQueueFull' }, 'with or without a port')
  t.same(started, ['running', 'w1', 'w2'], 'refused checks never ran')
})

t.test('a check that fails gives its lane to the next one', async t => {
  const queue = new PasswordChecks({ limit: 10, perAddress: 3 }, new PasswordLanes(1))
  const started: string[] = []
  const failing = held(started, 'bad')
  const next = held(started, 'next')
  const failed = queue.run('192.0.2.1', failing.check)
  const waiting = queue.run('192.0.2.2', next.check)
  failing.fail()
  await t.rejects(failed, { message: 'bad' })
  next.finish()
  t.equal(await waiting, 'next')
})

t.test('past the limit, or past an address\'s share, a check is refused at once and never runs', async t => {
  const queue = new PasswordChecks({ limit: 3, perAddress: 2 }, new PasswordLanes(1))
  const started: string[] = []
  const running = held(started, 'running')
  queue.run('192.0.2.1', running.check)
  const waiting = [held(started, 'a1'), held(started, 'a2'), held(started, 'b1')]
  const results = [queue.run('192.0.2.1', waiting[0].check), queue.run('192.0.2.1', waiting[1].check), queue.run('192.0.2.2', waiting[2].check)]
  await t.rejects(queue.run('192.0.2.1', held(started, 'a3').check), { name: 'PasswordQueueFull' }, 'the address has two waiting')
  await t.rejects(queue.run('192.0.2.3', held(started, 'c1').check), { name: 'PasswordQueueFull' }, 'three wait in all')
  running.finish()
  for (const check of waiting) check.finish()
  t.same(await Promise.all(results), ['a1', 'a2', 'b1'])
  t.same(started, ['running', 'a1', 'b1', 'a2'], 'turns between addresses')
  t.notOk(started.includes('a3') || started.includes('c1'), 'refused checks never ran')
})

t.test('a check whose client left before its turn never runs: the next one takes its lane', async t => {
  const queue = new PasswordChecks({ limit: 10, perAddress: 3 }, new PasswordLanes(1))
  const started: string[] = []
  const clients = new Map([['a2', true], ['b1', true], ['c1', true]])
  const submit = (address: string, name: string) => {
    const check = held(started, name)
    return { check, result: queue.run(address, check.check, () => clients.get(name) ?? true).catch((err: Error) => err.name) }
  }
  const running = submit('a', 'a1')
  const waiting = [submit('a', 'a2'), submit('b', 'b1'), submit('c', 'c1')]
  clients.set('a2', false)
  clients.set('b1', false)
  running.check.finish()
  for (const { check } of waiting) check.finish()
  t.same(await Promise.all([running, ...waiting].map(({ result }) => result)), ['a1', 'PasswordClientLeft', 'PasswordClientLeft', 'c1'])
  t.same(started, ['a1', 'c1'], 'the lane went past the two whose clients left')
  t.equal(await queue.run('192.0.2.4', held(started, 'gone').check, () => false).catch((err: Error) => err.message),
    'the client left before its password was checked', 'nor does one whose client left before a lane was free for it')
  t.same(started, ['a1', 'c1'])
})

t.test('an address is its network: an IPv6 client\'s /64, an IPv4-mapped address\'s IPv4', async t => {
  const queue = new PasswordChecks({ limit: 10, perAddress: 1 }, new PasswordLanes(1))
  const started: string[] = []
  const running = held(started, 'running')
  queue.run('192.0.2.9', running.check)
  const submit = (address: string, name: string) => {
    const check = held(started, name)
    return { check, result: queue.run(address, check.check).catch((err: Error) => err.name) }
  }
  const admitted = ['2001:db8:1:2::1', '2001:db8:1:3::1', '::ffff:192.0.2.1', '192.0.2.2', 'not-an-address'].map(address => submit(address, address))
  const refused = ['2001:db8:1:2:ffff:ffff:ffff:ffff', '192.0.2.1', 'another-non-address'].map(address => submit(address, `${address} again`))
  running.finish()
  for (const { check } of [...admitted, ...refused]) check.finish()
  t.same(await Promise.all(admitted.map(({ result }) => result)), ['2001:db8:1:2::1', '2001:db8:1:3::1', '::ffff:192.0.2.1', '192.0.2.2', 'not-an-address'])
  t.same(await Promise.all(refused.map(({ result }) => result)), ['PasswordQueueFull', 'PasswordQueueFull', 'PasswordQueueFull'],
    'one share for a /64, one for an IPv4 mapped or not, one for every string that is no address')
})

t.test('the application\'s own calls (no address) share the limit but not a per-address share', async t => {
  const queue = new PasswordChecks({ limit: 3, perAddress: 1 }, new PasswordLanes(1))
  const started: string[] = []
  const running = held(started, 'running')
  queue.run(null, running.check)
  const waiting = [held(started, 'x'), held(started, 'y'), held(started, 'z')]
  const results = waiting.map(check => queue.run(null, check.check))
  await t.rejects(queue.run(null, held(started, 'over').check), { name: 'PasswordQueueFull' })
  running.finish()
  for (const check of waiting) check.finish()
  t.same(await Promise.all(results), ['x', 'y', 'z'])
})

t.test('by default, one lane per core but the event loop\'s', async t => {
  const queue = new PasswordChecks({ limit: 1, perAddress: 1 })
  t.equal(await queue.run('192.0.2.1', async () => 'ran'), 'ran')
})

t.test('admitted logins hold room in the queue while their attempts are counted; past it, none is admitted', async t => {
  const queue = new PasswordChecks({ limit: 2, perAddress: 1 }, new PasswordLanes(1))
  t.ok(queue.admit('192.0.2.1'), 'a lane free: admitted')
  queue.counted('192.0.2.1')
  const started: string[] = []
  const running = held(started, 'running')
  const result = queue.run('192.0.2.1', running.check)
  t.ok(queue.admit('192.0.2.2') && queue.admit('192.0.2.3'), 'room for two while the lane is busy')
  t.notOk(queue.admit('192.0.2.4'), 'two being counted fill the queue')
  queue.counted('192.0.2.2')
  const waiting = held(started, 'waiting')
  const queued = queue.run('192.0.2.2', waiting.check)
  t.notOk(queue.admit('192.0.2.4'), 'one waiting and one being counted fill it too')
  queue.counted('192.0.2.3')
  t.notOk(queue.admit('192.0.2.2'), 'an address with its share waiting is not admitted')
  t.ok(queue.admit('192.0.2.4'), 'another is, once the one counted went')
  queue.counted('192.0.2.4')
  running.finish()
  waiting.finish()
  t.same(await Promise.all([result, queued]), ['running', 'waiting'])
})

t.test('logins being counted take their address\'s share: one address\'s flood leaves room for the others', async t => {
  const queue = new PasswordChecks({ limit: 8, perAddress: 2 }, new PasswordLanes(1))
  const started: string[] = []
  const running = held(started, 'running')
  const result = queue.run('192.0.2.1', running.check)
  const admitted = Array.from({ length: 8 }, () => queue.admit('2001:db8::1')).filter(Boolean).length
  t.equal(admitted, 2, 'an address is admitted its share, whatever it sends at once')
  t.ok(queue.admit('192.0.2.2'), 'another address still is')
  queue.counted('2001:db8::2')
  t.ok(queue.admit('2001:db8::3'), 'the /64 has room again once one of its own was counted')
  t.notOk(queue.admit('2001:db8::4'))
  for (const ip of ['2001:db8::1', '2001:db8::1', '192.0.2.2']) queue.counted(ip)
  t.ok(queue.admit(null) && queue.admit(null) && queue.admit(null), 'the application\'s own logins have no share, only the room in all')
  for (let n = 0; n < 3; n++) queue.counted(null)
  running.finish()
  t.equal(await result, 'running')
})
