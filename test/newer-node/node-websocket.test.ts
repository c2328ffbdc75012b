// Why the README gives the SDK its NodeWebSocket on Node 22 and later too, where SDK 19 on (26 here) defaults to
// Node's own WebSocket: that one, like ws as it is, hands several frames to listeners in one turn (the SDK reads one
// and loses the rest), and it reports a refused upgrade's close in the error's turn (Node 24, 26), where the SDK stops
// retrying, or not at all (22), where the SDK's own close() makes errors without end and a RangeError ends the process.
// If Node changes either, these fail, and the README's advice should change with them.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import t from 'tap'
import { createDirectus, realtime } from '@directus/sdk-26'
import { build, within } from '../helpers.js'
import { NodeWebSocket } from '../node-websocket.js'

const burst = 20
const retries = 5

for (const [name, WebSocketClass, delivered] of [
  ["Node's own WebSocket", globalThis.WebSocket, 'loses'],
  ['NodeWebSocket', NodeWebSocket, 'keeps']
] as const) {
  t.test(`SDK 26 on ${name}: frames the server sends together, its listeners see ${delivered === 'keeps' ? 'all' : 'one of'}`, async t => {
    const { url } = await build(t, {
      rest: {
        auth: 'public',
        handlers: {
          burst (message, connection) {
            for (let i = 0; i < burst; i++) connection.send({ type: 'burst', uid: message.uid, i })
          }
        }
      }
    })
    const client = createDirectus(url('').replace('ws:', 'http:'), { globals: { WebSocket: WebSocketClass as unknown as typeof globalThis.WebSocket } })
      .with(realtime({ authMode: 'public', reconnect: false }))
    t.teardown(() => client.disconnect())
    let seen = 0
    client.onWebSocket('message', (frame: { type: string }) => { if (frame.type === 'burst') seen++ })
    const socket = await client.connect()
    // The socket's own listener, there for the whole burst, tells when all of it has arrived.
    let arrived!: () => void
    const all = new Promise<void>(resolve => { arrived = resolve })
    let count = 0
    socket.addEventListener('message', () => { if (++count === burst) setImmediate(arrived) })
    client.sendMessage({ type: 'burst' })
    await within(all, 'the burst')
    if (delivered === 'keeps') t.equal(seen, burst)
    else t.ok(seen >= 1 && seen < burst, `${seen} of ${burst}`)
  })
}

// SDK 26 on Node's own WebSocket, in a process of its own: on Node 22 the refusal crashes it.
const nativeClient = `
import { createDirectus, realtime } from '@directus/sdk-26'
process.on('uncaughtException', error => { console.log('crashed ' + error.name); process.exit(0) })
const client = createDirectus(process.argv[1]).with(realtime({ authMode: 'strict', reconnect: { delay: 100, retries: ${retries} } }))
let errors = 0
// A few: on Node 22 they come without end, until the crash.
client.onWebSocket('error', () => { if (++errors <= 3) console.log('error') })
await client.connect().catch(() => {})
// Retries still to come keep the process alive (their timers are its own): it ends when it has made all it will.
setTimeout(() => process.exit(0), ${retries * 100 * 4}).unref()
`

t.test("SDK 26 on Node's own WebSocket stops retrying refused upgrades (or crashes); on NodeWebSocket it retries until its limit", async t => {
  const { url } = await build(t, { rest: { auth: 'strict' } })
  const base = url('').replace('ws:', 'http:')
  const native = spawn(process.execPath, ['--input-type=module', '-e', nativeClient, base], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { native.kill() })
  const said: string[] = []
  createInterface({ input: native.stdout }).on('line', line => said.push(line))
  const ended = once(native, 'exit')

  const client = createDirectus(base, { globals: { WebSocket: NodeWebSocket as unknown as typeof globalThis.WebSocket } })
    .with(realtime({ authMode: 'strict', reconnect: { delay: 100, retries } }))
  t.teardown(() => client.disconnect())
  let errors = 0
  let done!: () => void
  const exhausted = new Promise<void>(resolve => { done = resolve })
  client.onWebSocket('error', () => { if (++errors === retries + 1) done() })
  // No login, so no token on the URL: HTTP 401, then the SDK's retries.
  await t.rejects(client.connect())
  await within(exhausted, "NodeWebSocket's retries")
  // The other process has tried as often as it ever will once it ends. Node 24 and 26 tell the error and the close in
  // one turn: the SDK's retry after the first close never ends, and no other is tried. Node 22 tells no close, and
  // the SDK's close() in its error listener makes another error, again and again: RangeError.
  await within(ended, "the process on Node's own WebSocket")
  const attempts = said.filter(line => line === 'error').length
  t.ok(attempts >= 1, `it was refused: ${said.join(', ')}`)
  t.ok(attempts <= 2 || said.includes('crashed RangeError'), `Node's own WebSocket: ${said.join(', ')}`)
})
