// endingAtOnce (lib/endpoints/graphql-subscription-end.ts): a subscription's results that end when asked to, whatever
// the source awaits; what the source gives or throws afterwards is dropped, and a source that fails to end is told.
import t from 'tap'
import { endingAtOnce, type SourceEnd } from '../../lib/endpoints/graphql-subscription-end.js'
import { retainedBytes } from '../hostile/gc.js'

const ignored: SourceEnd = { onEnding: () => {}, onReturnFailed: () => {} }

t.test('asked to end while the source waits: the pending result and every later one are done, at once', async t => {
  const failures: unknown[] = []
  let release!: (value: IteratorResult<string>) => void
  const source = {
    next: () => new Promise<IteratorResult<string>>(resolve => { release = resolve }),
    return: () => Promise.reject(new Error('cannot stop')),
    [Symbol.asyncIterator] () { return this }
  }
  const endings: Array<Promise<unknown>> = []
  const results = endingAtOnce(source, { onEnding: (ended) => endings.push(ended), onReturnFailed: (err) => failures.push(err) })
  const pending = results.next()
  t.same(await results.return(), { done: true, value: undefined }, 'return answers at once')
  t.same(await pending, { done: true, value: undefined }, 'the pending result is done')
  release({ done: false, value: 'late' })
  t.same(await results.next(), { done: true, value: undefined }, 'and so is every later one')
  t.same(await results.return(), { done: true, value: undefined }, 'a second return too')
  t.match(failures, [{ message: 'cannot stop' }], 'the source that failed to end is told, once')
  t.equal(endings.length, 1, 'told of the ending once')
  await t.rejects(endings[0]!, { message: 'cannot stop' }, 'with the source\'s own end')
})

t.test('the source\'s own end is told: settled once the source has stopped, not when the results end', async t => {
  let release!: () => void
  async function * source () {
    await new Promise<void>(resolve => { release = resolve })
    yield 'never seen'
  }
  let sourceEnded: Promise<unknown> | undefined
  let settled = false
  const results = endingAtOnce(source(), { ...ignored, onEnding: (ended) => { sourceEnded = ended; ended.then(() => { settled = true }) } })
  const pending = results.next()
  await results.return()
  t.same(await pending, { done: true, value: undefined })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(settled, false, 'the source still waits: its end has not come')
  release()
  await sourceEnded
  t.equal(settled, true, 'it comes once the source stops')
})

t.test('a source whose result fails passes the failure on', async t => {
  const source = { next: () => Promise.reject(new Error('resolver failed')), [Symbol.asyncIterator] () { return this } }
  await t.rejects(endingAtOnce(source, ignored).next(), { message: 'resolver failed' })
})

t.test('results passed on are not kept: a subscription\'s memory does not grow with what it has sent', async t => {
  async function * events () {
    for (let i = 0; ; i++) yield 'x'.repeat(1000) + i
  }
  const results = endingAtOnce(events(), ignored)
  // Warmed up first: what compiling the loop leaves on the heap is no result kept.
  for (let i = 0; i < 5000; i++) await results.next()
  const before = retainedBytes()
  for (let i = 0; i < 40_000; i++) await results.next()
  const grown = retainedBytes() - before
  // Kept, they held 19.5 MB; the heap's own noise on a busy machine reached 2.7 MB over half as many.
  t.ok(grown < 5_000_000, `40,000 results of 1 KB passed on, the subscription running: ${grown} bytes retained`)
  await results.return()
})

t.test('until then, the source\'s results pass through', async t => {
  async function * source () { yield 'a'; yield 'b' }
  const seen: string[] = []
  for await (const value of endingAtOnce(source(), ignored)) seen.push(value)
  t.same(seen, ['a', 'b'])
})
