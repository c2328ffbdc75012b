// What the app hands back may be any thenable: a library's promise, another realm's. One taken for a plain value would
// be treated as its own verdict, or its rejection go unheard.

export const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function'
