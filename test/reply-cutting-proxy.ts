// A TCP proxy in front of a Redis node that can lose one answer: the connection that carried a chosen command is cut
// once Redis has answered it in full, before the answer reaches the client, as a reset or a NAT going away between
// the two would. Redis has run the command; the client saw its connection drop, and ioredis sends it again. Or the
// answer is held, with all that follows it on that connection, until released: a connection gone silent one way
// (commands still reach Redis and run), as a busy network or a Redis stalled before it writes its answers. Or a
// subscriber's connection goes deaf: up, answering its PINGs, never passed a message, as behind a proxy that lost its
// own subscription.
import net from 'node:net'
import type { Test } from 'tap'

/** Where the RESP value starting at `from` ends in `bytes`, or -1 while it has not all arrived. */
function valueEnd (bytes: Buffer, from: number): number {
  const line = bytes.indexOf('\r\n', from)
  if (line === -1) return -1
  const type = String.fromCharCode(bytes[from]!)
  const size = Number(bytes.toString('latin1', from + 1, line))
  let end = line + 2
  // Bulk strings; RESP3's verbatim strings and blob errors (ioredis 6 speaks RESP3 where the server does) are alike.
  if ('$=!'.includes(type) && size >= 0) return end + size + 2 <= bytes.length ? end + size + 2 : -1
  // An array (none when null), a set or a push of `size` values, a map of `size` pairs: a command is an array of bulk
  // strings, an answer may nest. Anything else is one line.
  const values = '*~>'.includes(type) ? size : type === '%' ? 2 * size : 0
  for (let i = 0; i < values && end !== -1; i++) end = valueEnd(bytes, end)
  return end
}

/** Calls `onValue` with each whole RESP value in the chunks it is fed, in order. */
function valuesOf (onValue: (value: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0)
  return (chunk) => {
    pending = Buffer.concat([pending, chunk])
    for (let end = valueEnd(pending, 0); end !== -1; end = valueEnd(pending, 0)) {
      onValue(pending.subarray(0, end))
      pending = pending.subarray(end)
    }
  }
}

export interface ReplyCuttingProxy {
  port: number
  url: string
  /**
   * The next command (on any connection) whose bytes contain `text` runs on Redis; its connection is cut as the
   * chunk completing its answer arrives, and nothing of that chunk is passed on.
   */
  cutAfter (text: string): void
  /** As `cutAfter`, but the connection stays up, its answers from that one on held until `release`. */
  holdAfter (text: string): void
  /** Passes on what was held, and holds nothing more. */
  release (): void
  /**
   * The connections carried now pass on nothing Redis pushes to a subscriber (`message`), and all the rest (PONGs,
   * answers). Connections made later pass everything. For idle connections: a value half passed on is not expected.
   */
  deafen (): void
  /** Cuts every connection, and refuses new ones until `accept`: Redis away. */
  cutAll (): void
  accept (): void
  /** Connections cut so far. */
  readonly cuts: number
}

/** A proxy to `port` on loopback, closed with its connections at the test's end. */
export async function replyCuttingProxy (t: Test, port: number): Promise<ReplyCuttingProxy> {
  let marker: string | null = null
  let holding = false
  const releases: (() => void)[] = []
  let cuts = 0
  let refusing = false
  const sockets = new Set<net.Socket>()
  /** What deafens each connection carried now. */
  const deafeners = new Set<() => void>()
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = net.connect(port, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        sockets.delete(socket)
        deafeners.delete(deafen)
        client.destroy()
        upstream.destroy()
      })
    }
    // Read value by value once deaf: a message is `*3 $7 message ...` in RESP2, `>3 $7 message ...` in RESP3.
    let deaf: ((chunk: Buffer) => void) | null = null
    const deafen = () => {
      deaf = valuesOf((value) => { if (!/^[*>]3\r\n\$7\r\nmessage/.test(value.toString('latin1', 0, 16))) client.write(value) })
    }
    deafeners.add(deafen)
    // Redis answers a connection's commands in the order they came: the nth answer is the nth command's.
    let sent = 0
    let answered = 0
    let cutAt = 0
    const readCommands = valuesOf((command) => {
      sent++
      if (marker !== null && command.includes(marker)) {
        marker = null
        cutAt = sent
      }
    })
    const readAnswers = valuesOf(() => { answered++ })
    client.on('data', (chunk: Buffer) => {
      readCommands(chunk)
      upstream.write(chunk)
    })
    let held: Buffer[] | null = null
    upstream.on('data', (chunk: Buffer) => {
      readAnswers(chunk)
      if (deaf) {
        deaf(chunk)
        return
      }
      if (held) {
        held.push(chunk)
        return
      }
      if (cutAt === 0 || answered < cutAt) {
        client.write(chunk)
        return
      }
      if (holding) {
        cutAt = 0
        held = [chunk]
        releases.push(() => {
          for (const chunk of held!) client.write(chunk)
          held = null
        })
        return
      }
      cuts++
      cutAt = 0
      client.destroy()
      upstream.destroy()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  const { port: own } = server.address() as net.AddressInfo
  return {
    port: own,
    url: `redis://127.0.0.1:${own}`,
    cutAfter (text) {
      marker = text
      holding = false
    },
    holdAfter (text) {
      marker = text
      holding = true
    },
    deafen () {
      for (const deafen of deafeners) deafen()
    },
    cutAll () {
      refusing = true
      for (const socket of sockets) socket.destroy()
    },
    accept () { refusing = false },
    release () {
      marker = null
      for (const release of releases.splice(0)) release()
    },
    get cuts () { return cuts }
  }
}
