// A TCP proxy in front of a Redis node that can lose one answer: the connection that carried a chosen command is cut
// once Redis has answered it in full, before the answer reaches the client, as a reset or a NAT going away between
// the two would. Redis has run the command; the client saw its connection drop, and ioredis sends it again.
import net from 'node:net'
import type { Test } from 'tap'

/** Where the RESP value starting at `from` ends in `bytes`, or -1 while it has not all arrived. */
function valueEnd (bytes: Buffer, from: number): number {
  const line = bytes.indexOf('\r\n', from)
  if (line === -1) return -1
  const type = String.fromCharCode(bytes[from]!)
  const size = Number(bytes.toString('latin1', from + 1, line))
  let end = line + 2
  if (type === '$' && size >= 0) return end + size + 2 <= bytes.length ? end + size + 2 : -1
  if (type !== '*') return end
  // An array (none when null), of any values: a command is one of bulk strings, an answer may nest.
  for (let i = 0; i < size && end !== -1; i++) end = valueEnd(bytes, end)
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
  /** Connections cut so far. */
  readonly cuts: number
}

/** A proxy to `port` on loopback, closed with its connections at the test's end. */
export async function replyCuttingProxy (t: Test, port: number): Promise<ReplyCuttingProxy> {
  let marker: string | null = null
  let cuts = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        sockets.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
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
    upstream.on('data', (chunk: Buffer) => {
      readAnswers(chunk)
      if (cutAt === 0 || answered < cutAt) {
        client.write(chunk)
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
    cutAfter (text) { marker = text },
    get cuts () { return cuts }
  }
}
