// A subscription's results as graphql-ws reads them, ending as soon as they are asked to. An async generator paused at
// an `await` (a resolver waiting on an event source with nothing new) runs its `return` only at its next event: until
// then graphql-ws would keep the operation and send that event's result after the client's `complete` or the
// socket's close. The source itself still runs until then, so its slot among the socket's stays taken (`onEnding`).

export interface SourceEnd {
  /** Told when the subscription is asked to end, with the source's own end (settled once the source has stopped). */
  onEnding: (sourceEnded: Promise<unknown>) => void
  /** Told when the source fails to end. */
  onReturnFailed: (err: unknown) => void
}

export function endingAtOnce<T> (source: AsyncIterable<T>, end: SourceEnd): AsyncIterableIterator<T> & { return (): Promise<IteratorReturnResult<undefined>> } {
  const iterator = source[Symbol.asyncIterator]()
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined }
  let stopped = false
  // The pending result's resolver, dropped once it settles: nothing long-lived holds a result (racing each one against
  // one promise pending for the subscription's life would keep every result it ever sent).
  let pending: ((result: IteratorResult<T>) => void) | null = null
  const ending = async (): Promise<IteratorReturnResult<undefined>> => {
    if (!stopped) {
      stopped = true
      pending?.(done)
      pending = null
      // The source ends when it can; what it gives from now on is nobody's.
      const sourceEnded = Promise.resolve(iterator.return?.())
      sourceEnded.catch(end.onReturnFailed)
      end.onEnding(sourceEnded)
    }
    return done
  }
  return {
    next () {
      if (stopped) return Promise.resolve(done)
      return new Promise<IteratorResult<T>>((resolve, reject) => {
        pending = resolve
        // Once stopped, what it gives or throws settles a promise already done.
        iterator.next().then(result => { pending = null; resolve(result) }, err => { pending = null; reject(err) })
      })
    },
    return: ending,
    [Symbol.asyncIterator] () {
      return this
    }
  }
}
