// For global-websocket.test.ts: `@directus/sdk` on the global WebSocket, in a process of its own, since it may
// crash. Connects to the socket URL given (strict mode, a token on it), retries a tenth of a second after a close, and
// prints each `open`, `error` and `close` it hears, a line each. Nothing else keeps the process alive: it ends by
// itself once the SDK stops retrying.
import { createDirectus, realtime, staticToken } from '@directus/sdk'
import { GlobalWebSocket } from '../global-websocket.js'

const [url, token] = process.argv.slice(2)
const client = createDirectus(url, { globals: { WebSocket: GlobalWebSocket } })
  .with(staticToken(token))
  .with(realtime({ authMode: 'strict', reconnect: { delay: 100, retries: 5 } }))
for (const event of ['open', 'error', 'close'] as const) client.onWebSocket(event, () => { console.log(event) })
await client.connect()
