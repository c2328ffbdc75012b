// endingAtOnce (lib/endpoints/graphql-subscription-end.ts): a subscription's results that end when asked to, whatever
// the source awaits; what the source gives or throws afterwards is dropped, and a source that fails to end is told.
import t from 'tap'
import { endingAtOnce } from '../../lib/endpoints/graphql-subscription-end.js'

t.test('asked to end while the source waits: the pending result and every later one are done, at once', async t => {
  const failures: unknown[] = []
  let release!: (value: IteratorResult<string>) => void
  const source = {
    next: () => new Promise<IteratorResult<string>>(resolve => { release = resolve }),
    return: () => Promise.reject(new Error('cannot stop')),
    [Symbol.asyncIterator] () { return this }
  }
  const results = endingAtOnce(source, (err) => failures.push(err))
  const pending = results.next()
  t.same(await results.return(), { done: true, value: undefined }, 'return answers at once')
  t.same(await pending, { done: true, value: undefined }, 'the pending result is done')
  release({ done: false, value: 'late' })
  t.same(await results.next(), { done: true, value: undefined }, 'and so is every later one')
  t.same(await results.return(), { done: true, value: undefined }, 'a second return too')
  t.match(failures, [{ message: 'cannot stop' }], 'the source that failed to end is told, once')
})

t.test('until then, the source\'s results pass through', async t => {
  async function * source () { yield 'a'; yield 'b' }
  const seen: string[] = []
  for await (const value of endingAtOnce(source(), () => {})) seen.push(value)
  t.same(seen, ['a', 'b'])
})
