// A subscription's results as graphql-ws reads them, ending as soon as they are asked to. An async generator paused at
// an `await` (a resolver waiting on an event source with nothing new) runs its `return` only at its next event: until
// then graphql-ws would keep the operation, its slot among the socket's with it, and send that event's result after
// the client's `complete` or the socket's close.
// `onReturnFailed`: told when the source fails to end.
export function endingAtOnce<T> (source: AsyncIterable<T>, onReturnFailed: (err: unknown) => void): AsyncIterableIterator<T> & { return (): Promise<IteratorReturnResult<undefined>> } {
  const iterator = source[Symbol.asyncIterator]()
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined }
  let stopped = false
  let stop!: (result: IteratorReturnResult<undefined>) => void
  const stopping = new Promise<IteratorReturnResult<undefined>>(resolve => { stop = resolve })
  const ending = async (): Promise<IteratorReturnResult<undefined>> => {
    if (!stopped) {
      stopped = true
      stop(done)
      // The source ends when it can; what it gives from now on is nobody's.
      Promise.resolve(iterator.return?.()).catch(onReturnFailed)
    }
    return done
  }
  return {
    next () {
      if (stopped) return Promise.resolve(done)
      const next = iterator.next()
      next.catch(() => {}) // once stopped, its rejection is nobody's
      return Promise.race([next, stopping])
    },
    return: ending,
    [Symbol.asyncIterator] () {
      return this
    }
  }
}
