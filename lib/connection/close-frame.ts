// What a close frame can carry, checked before any socket is touched: ws throws on a code or a reason it cannot send
// only once it reaches an open socket (none matching, or a closing one, it takes anything), from inside a loop over them.

/** The longest reason a close frame carries, in bytes of UTF-8: a control frame's 125, less the code's two. */
export const closeReasonBytes = 123

/**
 * The codes an endpoint may send, as ws's own `isValidStatusCode` reads RFC 6455 section 7.4: 1004 is reserved, and
 * 1005 and 1006 only tell of a close that carried no code, or never came.
 */
function sendable (code: number): boolean {
  return Number.isInteger(code) && ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999))
}

/** Throws a TypeError for a close `connection.close` or `fastify.realtime.close` cannot send as it was asked for. */
export function checkClose (code: unknown, reason: unknown): void {
  if (code === undefined) {
    // ws would drop the reason without a word.
    if (reason !== undefined) throw new TypeError('a close reason needs a close code: a close frame without a code carries no reason')
    return
  }
  if (typeof code !== 'number' || !sendable(code)) {
    throw new TypeError(`close code must be 1000-1003, 1007-1014 or 3000-4999 (got ${typeof code === 'number' ? code : typeof code}): leave it out for a close without one (1005)`)
  }
  if (reason === undefined) return
  if (typeof reason !== 'string') throw new TypeError(`close reason must be a string (got ${typeof reason})`)
  const bytes = Buffer.byteLength(reason)
  if (bytes > closeReasonBytes) throw new TypeError(`close reason must be at most ${closeReasonBytes} bytes of UTF-8 (got ${bytes})`)
}
