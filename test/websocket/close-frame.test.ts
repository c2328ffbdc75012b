// The closes the application asks for: checked as ws checks them, before any socket is touched.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import { checkClose } from '../../lib/connection/close-frame.js'
import { build, connect, type Client } from '../helpers.js'

// ws's own rule, which its package exports do not reach: its file, by path.
const require = createRequire(import.meta.url)
const { isValidStatusCode } = require(join(dirname(require.resolve('ws')), 'lib/validation.js')) as { isValidStatusCode: (code: number) => boolean }

t.test('a close code is sendable exactly when ws would send it, and an integer', async t => {
  const differ: number[] = []
  for (let code = 0; code <= 0xffff; code++) {
    let sendable = true
    try { checkClose(code, undefined) } catch { sendable = false }
    if (sendable !== isValidStatusCode(code)) differ.push(code)
  }
  t.same(differ, [], 'the same codes as ws, from 0 to 65535')
  // ws would take 1000.5 (and write 1000): a code other than the one asked for.
  t.throws(() => checkClose(1000.5, undefined), { name: 'TypeError' })
})

const codeProblem = /^close code must be 1000-1003, 1007-1014 or 3000-4999 \(got [\w.]+\): leave it out for a close without one \(1005\)$/
const refused: [code: unknown, reason: unknown, message: RegExp][] = [
  // What a client reads for the heartbeat's close (no code), asked for by number.
  [1005, undefined, codeProblem],
  [1004, undefined, codeProblem],
  [1006, undefined, codeProblem],
  [999, undefined, codeProblem],
  [1015, undefined, codeProblem],
  [2999, undefined, codeProblem],
  [5000, undefined, codeProblem],
  [1000.5, undefined, codeProblem],
  [Number.NaN, undefined, codeProblem],
  ['4000', undefined, /^close code must be .* \(got string\)/],
  // 62 characters, 124 bytes.
  [4000, 'é'.repeat(62), /^close reason must be at most 123 bytes of UTF-8 \(got 124\)$/],
  [4000, 42, /^close reason must be a string \(got number\)$/],
  [undefined, 'bye', /^a close reason needs a close code/]
]

/** The socket is open and answered: nothing was sent to it, and it was not closed. */
async function stillOpen (t: Test, client: Client, uid: string) {
  client.send({ type: 'ping', uid })
  t.same(await client.next(), { type: 'pong', uid })
}

t.test('a close ws cannot send throws before any socket is touched, on the API and on a connection; every socket stays open', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const clients = [await connect(url('/websocket')), await connect(url('/websocket'))]
  for (const client of clients) await stillOpen(t, client, 'registered')
  t.equal(app.realtime.connections().length, 2)

  for (const [code, reason, message] of refused) {
    const asked = `close(${String(code)}, ${typeof reason === 'string' ? `${Buffer.byteLength(reason)} bytes` : String(reason)})`
    t.throws(() => app.realtime.close({}, code as number, reason as string), { name: 'TypeError', message }, `${asked} on every socket`)
    // A filter that reaches no socket throws all the same: the mistake shows in a test, not on the first day of use.
    t.throws(() => app.realtime.close({ user: 'nobody' }, code as number, reason as string), { name: 'TypeError', message }, `${asked} on none`)
    t.throws(() => app.realtime.connections()[0]!.close(code as number, reason as string), { name: 'TypeError', message }, `${asked} on one`)
  }
  for (const client of clients) await stillOpen(t, client, 'after')
  t.equal(app.realtime.connections().length, 2)

  // 122 bytes and a character: 123, the most a close frame carries.
  const longest = 'é'.repeat(61) + 'x'
  t.equal(app.realtime.close({}, 4000, longest), 2)
  for (const client of clients) t.same(await client.closed, { code: 4000, reason: longest })
})

t.test('a connection closes with a code alone, and with none', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const [coded, plain] = [await connect(url('/websocket')), await connect(url('/websocket'))]
  for (const client of [coded, plain]) await stillOpen(t, client, 'registered')
  const [first, second] = app.realtime.connections()
  first!.close(3000)
  second!.close()
  t.same(new Set([(await coded.closed).code, (await plain.closed).code]), new Set([3000, 1005]))
})
