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
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'])
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  const { store, giveBack } = flaky()
  giveBacks.add('codes bob', giveBack, 2_500)
  await clock.tickAsync(3_000)
  t.equal(store.tries, 3, 'at once, then at 1 and 2 s')
  await clock.tickAsync(3_000)
  t.equal(store.tries, 3, 'not after its time')
  t.equal(clock.countTimers(), 0)
  await giveBacks.settle('codes bob')
})

t.test('a wall clock stepped forward (NTP, a resume from suspend) leaves a give-back its time: tried on until it lands', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'])
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  const { store, giveBack } = flaky()
  giveBacks.add('session a', giveBack, 10 * 60_000)
  await clock.tickAsync(1_000)
  t.equal(store.tries, 2, 'at once, then at 1 s')
  clock.setSystemTime(Date.now() + 60 * 60_000) // an hour on by the wall clock; a second by the timers
  await clock.tickAsync(1_000)
  t.equal(store.tries, 3, 'tried again at 2 s')
  store.up = true
  await clock.tickAsync(1_000)
  t.equal(store.landed, 1, 'and landed once its store was back')
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

t.test('a try that never answers: settling fails after its time, and no other try is sent while it is under way', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'])
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  let tries = 0
  let answer: (() => void) | null = null
  giveBacks.add('session hung', () => { tries++; return new Promise<void>(resolve => { answer = resolve }) }, 60_000)
  await until(() => tries === 1)
  const settling = t.rejects(giveBacks.settle('session hung')!, /has not landed/)
  await realTurn()
  t.equal(tries, 1, 'settling waits for the try under way')
  await clock.tickAsync(1_000)
  await settling
  await clock.tickAsync(10_000)
  t.equal(tries, 1, 'a store that never answers holds one call, not one more every second')
  answer!()
  await until(() => giveBacks.settle('session hung') === null)
  t.pass('its answer, however late, lands it')
  t.equal(clock.countTimers(), 0)
})

t.test('one that throws at once fails', async t => {
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  giveBacks.add('session thrown', () => { throw new Error('no connection') }, 60_000)
  await t.rejects(giveBacks.settle('session thrown')!)
})

t.test('at most 16 pending for one owner and 10,000 in all: past them a failed call\'s is dropped', async t => {
  // No retry falls inside the count, however long adding 10,000 takes on a loaded machine.
  fakeClock(t, ['setInterval', 'clearInterval'])
  const giveBacks = new GiveBacks(1_000)
  t.teardown(() => giveBacks.stop())
  const away = () => Promise.reject(new Error('store away'))
  let tried = 0
  const counted = () => { tried++; return away() }
  for (let i = 0; i < 20; i++) giveBacks.add('session busy', counted, 60_000)
  await until(() => tried === 16)
  await realTurn()
  t.equal(tried, 16, 'one owner: 16')
  for (let i = 0; i < 10_000; i++) giveBacks.add(`session ${i}`, counted, 60_000)
  await until(() => tried === 10_000)
  await realTurn()
  t.equal(tried, 10_000, 'in all: 10,000')
})
