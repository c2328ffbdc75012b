// A GraphQL upgrade without the graphql-transport-ws subprotocol (PROTOCOL.md section 5): closed 4406 with graphql-ws's
// and Directus's reason, and nothing else: no guard waits for it (auth window, expiry), the app hears of no socket,
// nothing is logged. Timers and the Date are fake, to count the deadlines left and to reach a token's exp at once.
import t from 'tap'
import { Writable } from 'node:stream'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { referenceSchema } from '../../example/schema.js'
import type { AuthMode, RealtimeEventName } from '../../types/index.js'
import { build, Client, fakeClock, until } from '../helpers.js'

const schema = referenceSchema(() => null)

/** The server's TCP connections not yet closed, from now on. */
function openConnections (app: FastifyInstance): () => number {
  let open = 0
  app.server.on('connection', (socket: Socket) => {
    open++
    socket.once('close', () => { open-- })
  })
  return () => open
}

const cases: Array<{ auth: AuthMode, credential: boolean, what: string }> = [
  { auth: 'public', credential: false, what: 'public mode' },
  { auth: 'handshake', credential: false, what: 'handshake mode, no credential (an auth window would hold it 10 s)' },
  { auth: 'handshake', credential: true, what: 'handshake mode, a token on the URL (its expiry would hold it until exp)' },
  { auth: 'strict', credential: true, what: 'strict mode, a token on the URL' }
]

for (const { auth, credential, what } of cases) {
  t.test(`without graphql-transport-ws, ${what}: 4406 and nothing else`, async t => {
    const clock = fakeClock(t)
    const logged: Array<{ level: number, msg: string }> = []
    const stream = new Writable({ write (chunk: Buffer, _encoding, done) { logged.push(JSON.parse(chunk.toString())); done() } })
    const { app, url } = await build(t, { graphql: { auth, schema }, heartbeat: { enabled: false } }, { logger: { level: 'debug', stream } })
    const events: string[] = []
    for (const event of ['auth', 'authFailed', 'expire', 'close'] as RealtimeEventName[]) app.realtime.on(event, () => { events.push(event) })
    const open = openConnections(app)
    const exp = Math.floor(Date.now() / 1000) + 60
    const query = credential ? `?access_token=${app.realtime.jwt.sign({ id: 'u1', exp })}` : ''
    for (const protocols of [[], ['graphql-ws'], ['chat', 'graphql-ws']]) {
      const client = new Client(url(`/graphql${query}`), { protocols })
      t.same(await client.closed, { code: 4406, reason: 'Subprotocol not acceptable' }, protocols.join() || 'none offered')
    }
    t.same(app.realtime.connections(), [], 'no socket in the registry')
    // Closed at both ends (ws's 'close' follows its TCP connection's within the turn): their timers are gone.
    await until(() => open() === 0)
    await new Promise(resolve => setImmediate(resolve))
    t.equal(clock.countTimers(), 0, 'no deadline left behind: no auth window, no expiry, no cut pending')
    clock.tick(61_000) // past every window and the token's exp
    t.same(events, [], 'the app hears of no socket: no auth, expire or close')
    t.same(logged.filter(line => line.level >= 40), [], 'nothing logged at warn or error')
  })
}
