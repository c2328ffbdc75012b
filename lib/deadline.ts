/** A store, key lookup or hook that hangs must not hang the client: past the deadline it counts as unavailable. */
export function deadline<T> (work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([work, expired]).finally(() => clearTimeout(timer))
}
