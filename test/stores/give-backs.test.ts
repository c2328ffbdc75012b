// What failed calls took from a store, given back (lib/stores/give-backs.ts): at once, again every second while the
// store is away, for as long as asked; a call that would meet it waits for it.
import t from 'tap'
import { GiveBacks } from '../../lib/stores/give-backs.js'
import { fakeClock, until } from '../clock.js'

const realTurn = () => new Promise(resolve => setImmediate(resolve))

/** A give-back whose store answers as `up` says, counting its tries. */
function flaky () {
  const store = { up: false, tries: 0, landed: 0 }
  const giveBack = async () => {
    store.tries++
    if (!store.up) throw new Error('store away')
    store.landed++
  }
  return { store, giveBack }
}

t.test('tried again every second until it lands, then no more', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'])
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  const { store, giveBack } = flaky()
  giveBacks.add('session a', giveBack, 60_000)
  await until(() => store.tries === 1)
  await realTurn()
  t.equal(store.landed, 0, 'tried at once; the store is away')
  await t.rejects(giveBacks.settle('session a')!, /has not landed/, 'a call that would meet it is refused meanwhile')
  t.equal(store.tries, 2, 'settling tried it again')
  await clock.tickAsync(1_000)
  t.equal(store.tries, 3, 'and so does the next second')
  store.up = true
  await clock.tickAsync(1_000)
  t.equal(store.landed, 1, 'landed once the store is back')
  await clock.tickAsync(5_000)
  t.equal(store.tries, 4, 'never tried again')
  t.equal(clock.countTimers(), 0, 'nothing left to give back: no timer')
  await giveBacks.settle('session a')
})

t.test('given up on once its time has passed', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'])
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  const { store, giveBack } = flaky()
  giveBacks.add('codes bob', giveBack, 2_500)
  await clock.tickAsync(3_000)
  t.equal(store.tries, 4, 'at once, then at 1, 2 and 3 s')
  await clock.tickAsync(3_000)
  t.equal(store.tries, 4, 'not after its time')
  t.equal(clock.countTimers(), 0)
  await giveBacks.settle('codes bob')
})

t.test('each failed call gives its own back; settling waits for all of one owner\'s, none of another\'s', async t => {
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  const first = flaky()
  const second = flaky()
  const other = flaky()
  giveBacks.add('session a', first.giveBack, 60_000)
  giveBacks.add('session a', second.giveBack, 60_000)
  giveBacks.add('session b', other.giveBack, 60_000)
  await until(() => first.store.tries + second.store.tries + other.store.tries === 3)
  first.store.up = true
  await t.rejects(giveBacks.settle('session a')!, 'one of the two has not landed')
  second.store.up = true
  await giveBacks.settle('session a')
  t.same([first.store.landed, second.store.landed, other.store.landed], [1, 1, 0])
  await t.rejects(giveBacks.settle('session b')!)
  giveBacks.stop()
  t.equal(giveBacks.settle('session b'), null, 'stopped: nothing is pending any more')
  const late = flaky()
  giveBacks.add('session c', late.giveBack, 60_000)
  t.equal(late.store.tries, 0, 'nor taken on: the app is closing')
  t.equal(giveBacks.settle('session c'), null)
})

t.test('a try that never answers counts as failed after its time; one that throws at once as failed', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'])
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  let tries = 0
  giveBacks.add('session hung', () => { tries++; return new Promise(() => {}) }, 60_000)
  await until(() => tries === 1)
  const settling = t.rejects(giveBacks.settle('session hung')!, /has not landed/)
  await realTurn()
  t.equal(tries, 1, 'one try at a time: settling waits for the one under way')
  await clock.tickAsync(1_000)
  await settling
  giveBacks.add('session thrown', () => { throw new Error('no connection') }, 60_000)
  await t.rejects(giveBacks.settle('session thrown')!)
})
