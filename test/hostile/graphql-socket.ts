// A raw graphql-transport-ws socket for the hostile GraphQL tests: it sends what a hostile client sends (bursts of
// subscribes, huge documents) and keeps every frame the server answered, by operation id.
import type { Socket } from 'node:net'
import { connect, type Client } from '../helpers.js'

export interface Frame {
  id?: string
  type: string
  payload?: unknown
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export class GraphqlSocket {
  readonly client: Client
  /** Every frame that named an operation, by its id, in the order they arrived. */
  readonly frames = new Map<string, Frame[]>()
  #pongs = 0

  private constructor (client: Client) {
    this.client = client
    client.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame
      if (frame.type === 'pong') this.#pongs++
      if (frame.id === undefined) return
      const frames = this.frames.get(frame.id) ?? []
      frames.push(frame)
      this.frames.set(frame.id, frames)
    })
  }

  /** Opens a socket on `url` (with `headers`) and waits for the `connection_ack` of its `connection_init`. */
  static async open (url: string, headers: Record<string, string> = {}): Promise<GraphqlSocket> {
    const client = await connect(url, { protocols: 'graphql-transport-ws', headers })
    const socket = new GraphqlSocket(client)
    client.send({ type: 'connection_init' })
    const ack = await client.next()
    if ((ack as Frame).type !== 'connection_ack') throw new Error(`no connection_ack: ${JSON.stringify(ack)}`)
    return socket
  }

  subscribe (id: string, query: string, operationName?: string): void {
    this.client.send({ id, type: 'subscribe', payload: { query, operationName } })
  }

  complete (id: string): void {
    this.client.send({ id, type: 'complete' })
  }

  /** Sends `frames` in one write: the server reads them at once (and handles one a turn of its event loop). */
  atOnce (...frames: Frame[]): void {
    const tcp = (this.client.ws as unknown as { _socket: Socket })._socket
    tcp.cork()
    for (const frame of frames) this.client.send(frame)
    tcp.uncork()
  }

  /** Whether the server ended the operation: an `error` or a `complete` arrived for it. */
  ended (id: string): boolean {
    return (this.frames.get(id) ?? []).some(frame => frame.type === 'error' || frame.type === 'complete')
  }

  /** Waits until `done` holds, polling; false if it still does not after `timeoutMs`. */
  async until (done: () => boolean, timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      if (Date.now() > deadline) return false
      await sleep(5)
    }
    return true
  }

  /** Runs one operation and returns the frames it got, once it ended (or what arrived in 10 s). */
  async result (id: string, query: string, operationName?: string): Promise<Frame[]> {
    this.subscribe(id, query, operationName)
    await this.until(() => this.ended(id))
    return this.frames.get(id) ?? []
  }

  /** A ping answered: what the server did for every frame sent before it has run. */
  async roundTrip (): Promise<void> {
    const pongs = this.#pongs
    this.client.send({ type: 'ping' })
    await this.until(() => this.#pongs > pongs)
  }
}
