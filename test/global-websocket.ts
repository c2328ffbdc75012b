// The WebSocket the real clients take in Node when given none: the global one, undici's, from Node 22 on. Node 20
// has none (without --experimental-websocket): there, undici's own package, a devDependency (6.x, the undici of Node
// 22), so the tests of it run on every Node the suite runs on.
export const GlobalWebSocket: typeof globalThis.WebSocket =
  globalThis.WebSocket ?? (await import('undici')).WebSocket as unknown as typeof globalThis.WebSocket

/** Node's own global, or the undici package standing in for it on Node 20. */
export const globalWebSocketName = globalThis.WebSocket === undefined ? 'undici\'s WebSocket (Node 20 has no global one)' : 'the global WebSocket'
