// The README's `NodeWebSocket` (The three modes, handshake), verbatim: the tests give it to `@directus/sdk` in Node
// (18 and 26).
import WebSocket from 'ws'

// ws, delivering events as a browser's WebSocket does, which the SDK relies on. In Node, 22 and later too (the SDK's
// default there, Node's own WebSocket, loses frames and stops retrying, or crashes): browsers need nothing.
export class NodeWebSocket extends WebSocket {
  #deferred = new Map()

  constructor (url: string | URL, protocols?: string | string[]) {
    // One frame per tick: the SDK reads them one at a time, and loses frames ws delivers together.
    super(url, protocols, { allowSynchronousEvents: false })
  }

  // `close` a turn after `error`: ws reports a refused upgrade's (or a missing server's) both in one tick, and the SDK
  // then never retries again. Removals find the wrapper, so the SDK's own still work.
  addEventListener (type: any, listener: any, options?: any) {
    if (type !== 'close') return super.addEventListener(type, listener, options)
    const later = this.#deferred.get(listener) ?? ((event: unknown) => { setImmediate(() => listener.call(this, event)) })
    this.#deferred.set(listener, later)
    super.addEventListener(type, later, options)
  }

  removeEventListener (type: any, listener: any) {
    if (type !== 'close') return super.removeEventListener(type, listener)
    super.removeEventListener(type, this.#deferred.get(listener) ?? listener)
    this.#deferred.delete(listener)
  }
}
