// The reference server (`npm start`, PROTOCOL.md section 9): ping, seeded users, the user file, whoami, a request
// log that never carries the `?access_token=` value, and what the demo page serves (its files and the client
// libraries, nothing else; test/browser/demo.test.ts drives it).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { printSchema } from 'graphql'
import { buildReferenceServer, type ReferenceServer } from '../../example/app.js'
import { referenceSchema } from '../../example/schema.js'
import { redactUrl } from '../../lib/index.js'
import { admin, connect, editor, refusedWith, secret } from '../helpers.js'

const baseEnv = { ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password, SECRET: secret, LOG_LEVEL: 'silent' }

async function start (t: Test, env: Record<string, string | undefined>, logStream?: { write (line: string): void }) {
  const server: ReferenceServer = await buildReferenceServer(env, { logStream })
  t.teardown(() => server.app.close())
  return server
}

async function listen (server: ReferenceServer): Promise<(path: string) => string> {
  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = server.app.server.address() as AddressInfo
  return (path) => `ws://127.0.0.1:${port}${path}`
}

async function login (server: ReferenceServer, email: string, password: string) {
  return server.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password, mode: 'json' } })
}

async function accessToken (server: ReferenceServer, email: string, password: string): Promise<string> {
  const response = await login(server, email, password)
  if (response.statusCode !== 200) throw new Error(`login of ${email} answered ${response.statusCode}`)
  return response.json().data.access_token
}

t.test('GET /server/ping answers pong', async t => {
  const { app } = await start(t, baseEnv)
  const response = await app.inject({ method: 'GET', url: '/server/ping' })
  t.equal(response.statusCode, 200)
  t.equal(response.body, 'pong')
  t.match(response.headers['content-type'], /^text\/plain/)
})

t.test('a password is generated when ADMIN_PASSWORD is unset, and it logs the admin in', async t => {
  const server = await start(t, { ...baseEnv, ADMIN_PASSWORD: undefined })
  const { generatedPassword } = server
  t.type(generatedPassword, 'string')
  t.ok(generatedPassword!.length >= 16, 'long enough to guess nothing')

  const response = await login(server, admin.email, generatedPassword!)
  t.equal(response.statusCode, 200)
  t.match(response.json(), { data: { access_token: String, refresh_token: String, expires: Number } })
  const wrong = await login(server, admin.email, admin.password)
  t.equal(wrong.statusCode, 401)
  t.same(wrong.json(), { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] })

  const chosen = await start(t, baseEnv)
  t.equal(chosen.generatedPassword, null, 'none when ADMIN_PASSWORD is given')
  t.equal((await login(chosen, admin.email, admin.password)).statusCode, 200)
})

t.test('a SECRET is generated, with a warning, when unset', async t => {
  const lines: string[] = []
  const server = await start(t, { ...baseEnv, SECRET: undefined, LOG_LEVEL: 'warn' }, { write: (line) => { lines.push(line) } })
  t.ok(lines.some(line => JSON.parse(line).level === 40 && /SECRET is not set/.test(JSON.parse(line).msg)), 'warned')
  const url = await listen(server)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: await accessToken(server, admin.email, admin.password) })
  t.match(await client.next(), { type: 'auth', status: 'ok' })
  await client.close()
})

t.test('USERS_FILE users log in, and whoami shows their role', async t => {
  const operator = { email: 'Ops@Example.com', password: 'op3rat0r', role: 'operator', admin: true }
  const dir = t.testdir({ 'users.json': JSON.stringify([editor, operator]) })
  const server = await start(t, { ...baseEnv, USERS_FILE: join(dir, 'users.json') })
  const url = await listen(server)

  const cases = [
    { user: editor, me: { email: editor.email, role: 'editor', admin: false } },
    { user: operator, me: { email: 'ops@example.com', role: 'operator', admin: true } }
  ]
  for (const { user, me } of cases) {
    const client = await connect(url('/websocket'))
    client.send({ type: 'auth', access_token: await accessToken(server, user.email, user.password), uid: 'a' })
    t.same(await client.next(), { type: 'auth', status: 'ok', uid: 'a' })
    client.send({ type: 'whoami', uid: 'w' })
    const reply = await client.next() as { data: { id: string } }
    t.same(reply, { type: 'whoami', uid: 'w', data: { id: reply.data.id, ...me } }, `whoami of ${user.email}`)
    await client.close()
  }
  t.equal((await login(server, editor.email, 'not-the-password')).statusCode, 401)
  // The admin from the environment is still there.
  t.equal((await login(server, admin.email, admin.password)).statusCode, 200)
})

t.test('whoami over a raw ws client in public mode answers data: null', async t => {
  const server = await start(t, { ...baseEnv, WEBSOCKETS_REST_AUTH: 'public' })
  const url = await listen(server)
  const client = await connect(url('/websocket'))
  client.send({ type: 'whoami', uid: 7 })
  t.same(await client.next(), { type: 'whoami', uid: 7, data: null })
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', data: null }, 'no uid when none was sent')
  await client.close()
})

t.test('the request log never contains the ?access_token= value', async t => {
  const lines: string[] = []
  const server = await start(t, { ...baseEnv, LOG_LEVEL: 'info' }, { write: (line) => { lines.push(line) } })
  const url = await listen(server)
  const token = await accessToken(server, admin.email, admin.password)

  // Accepted: the token authenticated the socket.
  const client = await connect(url(`/websocket?access_token=${token}`))
  client.send({ type: 'whoami' })
  t.match(await client.next(), { type: 'whoami', data: { email: admin.email, admin: true } })
  await client.close()
  // Refused: a tampered token (still almost the whole secret) gets HTTP 401 and is not logged either.
  t.equal((await refusedWith(url(`/websocket?x=1&access_token=${token}x&y=2`))).status, 401)
  // A plain HTTP request to the socket route.
  await server.app.inject({ method: 'GET', url: `/websocket?access_token=${token}` })

  const upgrades = lines.map(line => JSON.parse(line)).filter(entry => entry.msg === 'incoming request' && entry.req.url.startsWith('/websocket'))
  t.same(upgrades.map(entry => entry.req.url), [
    '/websocket?access_token=[redacted]',
    '/websocket?x=1&access_token=[redacted]&y=2',
    '/websocket?access_token=[redacted]'
  ], 'every request was logged, redacted')
  t.same(lines.filter(line => line.includes(token)), [], 'no log line carries the token')
})

t.test('redactUrl', async t => {
  const cases: [string, string][] = [
    ['/websocket', '/websocket'],
    ['/websocket?foo=bar', '/websocket?foo=bar'],
    ['/websocket?access_token=abc.def.ghi', '/websocket?access_token=[redacted]'],
    ['/websocket?a=1&access_token=abc&b=2', '/websocket?a=1&access_token=[redacted]&b=2'],
    ['/websocket?access_token=abc#frag', '/websocket?access_token=[redacted]#frag'],
    // An OAuth redirect's fragment carries its tokens as pairs.
    ['/cb#refresh_token=opaque-rt&state=s', '/cb#refresh_token=[redacted]&state=s'],
    ['/cb?x=1#access_token=opaque-at', '/cb?x=1#access_token=[redacted]'],
    ['/websocket?ACCESS_TOKEN=abc', '/websocket?ACCESS_TOKEN=[redacted]'],
    ['/websocket?access_token=a&access_token=b', '/websocket?access_token=[redacted]&access_token=[redacted]'],
    ['/websocket?access_token=', '/websocket?access_token=[redacted]'],
    ['/websocket?my_access_token=abc', '/websocket?my_access_token=abc'],
    ['/access_token=abc', '/access_token=abc'],
    ['/websocket?access%5Ftoken=abc', '/websocket?access%5Ftoken=[redacted]'],
    ['/websocket?access%5token=abc', '/websocket?access%5token=abc'],
    // Every character encoded, the name's and the value's: no `token` nor `eyJ` to spot until decoded.
    ['/websocket?access_t%6Fken=%65%79%4a%68%62', '/websocket?access_t%6Fken=[redacted]'],
    // Escapes with nothing to hide behind them are left as they are.
    ['/files/my%20report.pdf?token_count=2&q=a%2Fb', '/files/my%20report.pdf?token_count=2&q=a%2Fb']
  ]
  for (const [url, redacted] of cases) t.equal(redactUrl(url), redacted, url)
})

t.test('redactUrl hides a credential percent-encoded inside a value, once or twice', async t => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImEifQ.c2lnbmF0dXJl'
  const once = (text: string) => encodeURIComponent(text)
  const cases: [string, string][] = [
    // A login redirect back to a socket URL: `=` is `%3D`, so nothing marks where the JWT starts.
    [`/login?next=${once(`/websocket?access_token=${jwt}`)}`, '/login?next=/websocket?access_token=[redacted]'],
    [`/login?next=${once(`/websocket?x=${jwt}`)}`, '/login?next=/websocket?x=[redacted]'],
    [`/login?next=${once(`/cb?next=${once(`/websocket?access_token=${jwt}`)}`)}`, '/login?next=/cb?next=/websocket?access_token=[redacted]'],
    [`/login?redirect=${once('/cb?refresh_token=opaque-rt-123&x=1')}`, '/login?redirect=/cb?refresh_token=[redacted]&x=1'],
    [`/login?redirect=${once(`/cb?r=${once('/a?password=hunter2&x=1')}`)}`, '/login?redirect=/cb?r=/a?password=[redacted]&x=1'],
    [`/sso?state=${once('access_token=opaque-at')}&bad=%E0%A4%A&%zz`, '/sso?state=access_token=[redacted]&bad=%E0%A4%A&%zz'],
    // What was hidden before decoding stays hidden: an encoded `&` inside a password does not end it.
    ['/login?password=p%26ss&next=%2Fhome%3Faccess_token%3Dopaque-at', '/login?password=[redacted]&next=/home?access_token=[redacted]']
  ]
  for (const [url, redacted] of cases) t.equal(redactUrl(url), redacted, url)
})

t.test('redactUrl finds a credential encoded as deep as redirect chains go, and hides what is encoded deeper', async t => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImEifQ.c2lnbmF0dXJl'
  const encoded = (text: string, times: number): string => times === 0 ? text : encoded(encodeURIComponent(text), times - 1)
  for (const times of [3, 4, 5]) {
    t.equal(redactUrl(`/login?next=${encoded('/websocket?access_token=opaque-at&x=1', times)}`),
      '/login?next=/websocket?access_token=[redacted]&x=1', `encoded ${times} times: found, and logged decoded`)
  }
  for (const times of [6, 8, 12]) {
    t.equal(redactUrl(`/login?next=${encoded(`/websocket?access_token=${jwt}`, times)}&page=2`), '/login?next=[redacted]&page=2',
      `encoded ${times} times: what is still encoded after five rounds is hidden`)
  }
  t.equal(redactUrl(`/files/${encoded('a b', 7)}?page=2`), '/files/[redacted]?page=2', 'whatever it holds')
  const shallow = `/files/${encoded('a b', 5)}`
  t.equal(redactUrl(shallow), shallow, 'text with nothing to hide keeps its escapes')
  // Hostile text, each round one pass: a character encoded 300,000 times, and 100,000 runs encoded seven times.
  t.equal(redactUrl(`x=%${'25'.repeat(300_000)}41`), 'x=[redacted]')
  t.equal(redactUrl(`x=1${`&${encoded('A&', 7)}`.repeat(100_000)}`), `x=1${'&[redacted]'.repeat(100_000)}`)
})

t.test('an unknown route neither logs nor echoes the access token', async t => {
  const lines: string[] = []
  // LOG_LEVEL unset: info is the default, so the 404 line is there to look at.
  const { app } = await buildReferenceServer({ ADMIN_PASSWORD: 'pw', SECRET: 'a-secret-for-this-test' },
    { logStream: { write: (line: string) => { lines.push(line) } } })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/nope?access_token=sekrit.token.value' })
  t.equal(response.statusCode, 404)
  t.same(response.json(), { errors: [{ message: 'Route not found.', extensions: { code: 'ROUTE_NOT_FOUND' } }] })
  t.notMatch(lines.join('') + response.body, /sekrit/)
  t.match(lines.join(''), /route not found/)
})

t.test('GET / serves the page; /demo/ serves its script and the client libraries, and no other file', async t => {
  const { app } = await start(t, baseEnv)
  const served = {
    '/': 'text/html; charset=utf-8',
    '/demo/page.js': 'text/javascript; charset=utf-8',
    '/demo/sdk.js': 'text/javascript; charset=utf-8',
    '/demo/graphql-ws/client.js': 'text/javascript; charset=utf-8'
  }
  for (const [url, type] of Object.entries(served)) {
    const response = await app.inject({ url })
    t.same({ url, status: response.statusCode, type: response.headers['content-type'] }, { url, status: 200, type })
  }
  const client = (await app.inject({ url: '/demo/graphql-ws/client.js' })).body
  for (const chunk of new Set([...client.matchAll(/from '\.\/([\w-]+\.js)'/g)].map(([, name]) => name))) {
    t.equal((await app.inject({ url: `/demo/graphql-ws/${chunk}` })).statusCode, 200, `${chunk}, imported by client.js`)
  }
  for (const url of ['/demo/graphql-ws/index.js', '/demo/sdk.js.map', '/demo/index.html', '/demo/plugin.ts', '/demo/../package.json', '/demo/graphql-ws/../../package.json']) {
    t.equal((await app.inject({ url })).statusCode, 404, url)
  }
})

t.test('the GraphQL schema README.md and docs/protocol.md write is the one it serves', async t => {
  // printSchema's types, each on one line as the documents write them: `type Me { id: ID!, email: String, ... }`.
  const types = printSchema(referenceSchema(() => null)).split('\n\n')
    .map(type => type.replace(/ {\n {2}/, ' { ').replace(/\n {2}/g, ', ').replace(/\n}/, ' }'))
  t.equal(types.length, 3)
  for (const file of ['README.md', 'docs/protocol.md']) {
    const text = (await readFile(file, 'utf8')).replace(/\s+/g, ' ')
    for (const type of types) t.ok(text.includes(type), `${file}: ${type}`)
  }
})
