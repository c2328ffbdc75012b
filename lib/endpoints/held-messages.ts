// What a message costs the server while an app handler holds it (an async handler awaiting a database keeps its
// message): parsed JSON takes far more than its bytes, each value a pointer and often an object of its own (an empty
// object, 3 bytes with its comma, about 65 bytes of heap). 100 handlers holding frames of 64 KiB of `{}`s kept 130 MiB
// per socket, where 100 holding text kept 9 (docs/hostile-clients.md).

/** What each value of a held message counts besides its bytes: about what an empty object costs, parsed. */
const heldValueCost = 64

const openBrace = 0x7b
const openBracket = 0x5b
const comma = 0x2c

/**
 * What a message held by a handler counts: its frame's bytes, and `heldValueCost` for each brace, bracket and comma in
 * it (each begins a value or separates two). Those inside strings count too: an over-count only makes frames wait.
 */
export function heldCost (frame: Buffer): number {
  let values = 0
  for (let i = 0; i < frame.length; i++) {
    const byte = frame[i]
    if (byte === openBrace || byte === openBracket || byte === comma) values++
  }
  return frame.length + values * heldValueCost
}
