// A run that uses every credential (passwords, access tokens on the URL and in frames, refresh tokens over HTTP and
// on sockets, failures included, and malformed requests Fastify logs with their raw bytes) and then reads every log
// line it wrote, at trace level: none carries a credential.
import t from 'tap'
import { buildReferenceServer } from '../../example/app.js'
import { connect, refusedWith } from '../helpers.js'
import { malformedRequests, readable, sendRaw } from '../hostile/malformed-http.js'

t.test('no token or password appears anywhere in the logs of a run that used them', async t => {
  const lines: string[] = []
  const password = 'correct-horse-battery-staple'
  const { app } = await buildReferenceServer(
    { ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: password, SECRET: 'a-secret-for-the-log-capture-test', LOG_LEVEL: 'trace' },
    { logStream: { write: (line: string) => { lines.push(line) } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const base = `127.0.0.1:${port}`
  const secrets: string[] = [password, 'wrong-password-attempt']

  const login = await fetch(`http://${base}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@example.com', password })
  })
  const tokens = (await login.json() as { data: { access_token: string, refresh_token: string } }).data
  secrets.push(tokens.access_token, tokens.refresh_token)
  await fetch(`http://${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.access_token}` },
    body: JSON.stringify({ email: 'admin@example.com', password: 'wrong-password-attempt' })
  })

  const byUrl = await connect(`ws://${base}/websocket?access_token=${tokens.access_token}`)
  byUrl.send({ type: 'auth', refresh_token: tokens.refresh_token })
  const rotated = await byUrl.next() as { refresh_token: string }
  secrets.push(rotated.refresh_token)
  byUrl.send({ type: 'auth', email: 'admin@example.com', password })
  const fromPassword = await byUrl.next() as { refresh_token: string }
  secrets.push(fromPassword.refresh_token)
  byUrl.send({ type: 'auth', access_token: `${tokens.access_token}tampered` })
  await byUrl.closed

  const logs = await connect(`ws://${base}/websocket/logs?access_token=${tokens.access_token}`)
  logs.send({ type: 'subscribe', log_level: 'trace' })
  await logs.next()
  await refusedWith(`ws://${base}/websocket?access_token=${tokens.access_token}tampered`)
  await fetch(`http://${base}/nope?access_token=${tokens.access_token}`)
  const logout = await fetch(`http://${base}/auth/logout`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: fromPassword.refresh_token })
  })
  t.equal(logout.status, 204)
  const malformed = malformedRequests({ accessToken: tokens.access_token, refreshToken: fromPassword.refresh_token, password })
  for (const request of malformed) t.match(await sendRaw(port, request), /^HTTP\/1.1 4\d\d /, 'a malformed request is refused')
  const streamed: string[] = []
  logs.send({ type: 'ping', uid: 'end' })
  for (;;) {
    const frame = await logs.next() as { type: string, uid?: string }
    streamed.push(JSON.stringify(frame))
    if (frame.type === 'pong' && frame.uid === 'end') break
  }
  await logs.close()

  // Raw bytes are decoded: a secret inside a byte array is still there.
  const everything = readable(lines.join('') + streamed.join(''))
  t.equal(lines.filter(line => line.includes('"msg":"client ')).length, malformed.length, 'Fastify logged each client error')
  t.equal(streamed.filter(frame => frame.includes('"msg":"client ')).length, malformed.length, 'and each was streamed')
  t.ok(lines.length > 10, `${lines.length} log lines written`)
  t.ok(streamed.length > 3, `${streamed.length} frames streamed to the logs subscriber`)
  for (const secret of secrets) t.notOk(everything.includes(secret), `no ${secret.slice(0, 6)}... in the logs`)
})
