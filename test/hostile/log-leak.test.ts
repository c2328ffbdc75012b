// Hostile clients against the logs (PROTOCOL.md section 11): at trace, Fastify logs a malformed request with its raw
// bytes (`err.rawPacket`), and an error may carry a credential in its message or its properties. Neither the
// reference server's log output nor the logs stream may show one.
import t, { type Test } from 'tap'
import { buildReferenceServer } from '../../example/app.js'
import { connect, type Client } from '../helpers.js'
import { malformedRequests, readable, sendRaw, type Credentials } from './malformed-http.js'

const password = 'hostile-test-admin-password'

interface Watched {
  app: Awaited<ReturnType<typeof buildReferenceServer>>['app']
  port: number
  credentials: Credentials
  /** Every line the server wrote, parsed. */
  written: () => Record<string, unknown>[]
  /** Everything the server wrote and streamed so far, raw bytes decoded. */
  everything: () => Promise<string>
  /** The `data` of every line streamed to the admin subscriber so far. */
  streamed: Record<string, unknown>[]
}

/** The reference server at trace, its log output captured, and an admin subscribed to its logs at trace. */
async function watchedServer (t: Test): Promise<Watched> {
  const lines: string[] = []
  const { app } = await buildReferenceServer(
    { ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: password, SECRET: 'a-secret-for-the-hostile-log-test', LOG_LEVEL: 'trace' },
    { logStream: { write: (line: string) => { lines.push(line) } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const login = await fetch(`http://127.0.0.1:${port}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@example.com', password })
  })
  const tokens = (await login.json() as { data: { access_token: string, refresh_token: string } }).data
  const subscriber: Client = await connect(`ws://127.0.0.1:${port}/websocket/logs`)
  subscriber.send({ type: 'auth', access_token: tokens.access_token })
  await subscriber.next()
  subscriber.send({ type: 'subscribe', log_level: 'trace' })
  await subscriber.next()
  t.teardown(() => subscriber.close())
  const streamed: Record<string, unknown>[] = []
  let marks = 0
  return {
    app,
    port,
    credentials: { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, password },
    written: () => lines.map(line => JSON.parse(line) as Record<string, unknown>),
    streamed,
    async everything () {
      // A ping's pong comes after every line logged before it.
      const uid = `mark-${marks++}`
      subscriber.send({ type: 'ping', uid })
      for (;;) {
        const frame = await subscriber.next() as { type: string, uid?: string, data?: Record<string, unknown> }
        if (frame.type === 'pong' && frame.uid === uid) break
        if (frame.type === 'logs' && frame.data) streamed.push(frame.data)
      }
      return readable(lines.join('') + JSON.stringify(streamed))
    }
  }
}

function noSecrets (t: Test, everything: string, credentials: Credentials) {
  for (const [name, secret] of Object.entries(credentials)) {
    t.notOk(everything.includes(secret), `no ${name} in the log output nor in the logs stream`)
  }
}

t.test('a malformed request at trace leaves no credential in the log or the logs stream', async t => {
  const server = await watchedServer(t)
  const answers = []
  for (const request of malformedRequests(server.credentials)) answers.push(await sendRaw(server.port, request))
  t.match(answers, [/^HTTP\/1.1 400 /, /^HTTP\/1.1 400 /, /^HTTP\/1.1 431 /], 'each request is refused')
  const everything = await server.everything()

  const clientErrors = (lines: Record<string, unknown>[]) => lines.filter(line => /^client (error|header_overflow)$/.test(String(line.msg)))
  t.equal(clientErrors(server.written()).length, 3, 'Fastify logged each client error')
  t.equal(clientErrors(server.streamed).length, 3, 'and each reached the subscriber')
  for (const line of [...clientErrors(server.written()), ...clientErrors(server.streamed)]) {
    const err = line.err as Record<string, unknown>
    t.match(err, { message: /^Parse Error/, code: /^HPE_/ }, 'the line still says what went wrong')
    t.notOk(Array.isArray((err.rawPacket as { data?: unknown } | undefined)?.data), 'without the raw bytes')
  }
  noSecrets(t, everything, server.credentials)
})

t.test('an error carrying credentials in its message and properties is logged redacted', async t => {
  const server = await watchedServer(t)
  const { accessToken, refreshToken } = server.credentials
  const context: Record<string, unknown> = { redis: `redis://default:${password}@127.0.0.1:6379` }
  context.self = context
  const err = Object.assign(new Error(`GET /upstream?access_token=${accessToken} failed with {"password":"${password}"}`), {
    body: `email=admin%40example.com&password=${password}`,
    request: { headers: { authorization: `Bearer ${accessToken}`, cookie: `directus_refresh_token=${refreshToken}` } },
    response: `HTTP/1.1 401\r\nSet-Cookie: directus_refresh_token=${refreshToken}; HttpOnly\r\n`,
    detail: `retried with ${accessToken}`,
    attempts: [`/cb?access_token=${accessToken}`, { otp: '123456' }],
    url: new URL(`https://upstream.example/cb?access_token=${accessToken}`),
    payload: Buffer.from(JSON.stringify({ password })),
    context
  })
  server.app.log.error({ err }, 'upstream call failed')
  server.app.log.trace({ err }, 'the same at trace')
  const everything = await server.everything()

  const logged = [...server.written(), ...server.streamed].filter(line => line.msg === 'upstream call failed')
  t.equal(logged.length, 2, 'logged and streamed')
  for (const line of logged) {
    t.match(line.err, {
      type: 'Error',
      message: 'GET /upstream?access_token=[redacted] failed with {"password":[redacted]}',
      request: { headers: { authorization: '[redacted]', cookie: '[redacted]' } },
      detail: 'retried with [redacted]',
      attempts: ['/cb?access_token=[redacted]', { otp: '[redacted]' }],
      url: 'https://upstream.example/cb?access_token=[redacted]',
      payload: '[redacted]',
      context: { redis: 'redis://default:[redacted]@127.0.0.1:6379', self: '[Circular]' }
    }, 'what went wrong is kept, the credentials are not')
  }
  noSecrets(t, everything, server.credentials)
})

t.test('an access token percent-encoded in a login redirect is logged and streamed redacted', async t => {
  const server = await watchedServer(t)
  const next = encodeURIComponent(`/websocket?access_token=${server.credentials.accessToken}`)
  t.equal((await fetch(`http://127.0.0.1:${server.port}/login?next=${next}`)).status, 404)
  const everything = await server.everything()

  const logged = [...server.written(), ...server.streamed].filter(line => line.msg === 'incoming request' &&
    String((line.req as { url: string }).url).startsWith('/login'))
  t.equal(logged.length, 2, 'logged (through realtimeSerializers) and streamed')
  for (const line of logged) t.match(line.req, { url: '/login?next=/websocket?access_token=[redacted]' })
  noSecrets(t, everything, server.credentials)
})

t.test('a credential-named query parameter written as qs writes arrays and objects is logged and streamed redacted', async t => {
  const server = await watchedServer(t)
  const { refreshToken } = server.credentials // opaque: a JWT is hidden wherever it is, whatever it is called
  // Clients serialising `{ access_token: [token] }` or nested objects the qs way: the name carries a suffix or a prefix.
  const names = ['access_token[]', 'access_token%5B%5D', 'access_token[0]', 'access_token%5B0%5D', 'access_token[x]',
    'refresh_token[]', 'access_token.x', 'user[access_token]', 'auth.refresh_token', 'otp[]', 'access%5Ftoken%5B%5D', 'access_token%20']
  for (const name of names) {
    t.equal((await fetch(`http://127.0.0.1:${server.port}/leak-check?page[size]=2&${name}=${refreshToken}&sort.by=id`)).status, 404, name)
  }
  const everything = await server.everything()

  const logged = [...server.written(), ...server.streamed].filter(line => line.msg === 'incoming request' &&
    String((line.req as { url: string }).url).startsWith('/leak-check'))
  t.equal(logged.length, 2 * names.length, 'logged (through realtimeSerializers) and streamed')
  for (const line of logged) t.match(line.req, { url: /^\/leak-check\?page\[size\]=2&[^=]+=\[redacted\]&sort\.by=id$/ })
  noSecrets(t, everything, server.credentials)

  const { redactLogObject } = await import('../../lib/redaction.js')
  t.same(redactLogObject({ query: { 'access_token[]': refreshToken, 'user[refresh_token]': refreshToken, 'access_token.0': refreshToken, 'page[size]': '2', 'my_access_token_count[]': '3' } }),
    { query: { 'access_token[]': '[redacted]', 'user[refresh_token]': '[redacted]', 'access_token.0': '[redacted]', 'page[size]': '2', 'my_access_token_count[]': '3' } },
    'a query object the app logs, its names kept whole by the parser')
})

t.test('a JSON.parse failure quoting a body is logged without the quote', async t => {
  const server = await watchedServer(t)
  let err: unknown
  try { JSON.parse(password) } catch (error) { err = error }
  server.app.log.warn({ err }, 'a body that is not JSON')
  const everything = await server.everything()

  const logged = [...server.written(), ...server.streamed].filter(line => line.msg === 'a body that is not JSON')
  t.equal(logged.length, 2, 'logged and streamed')
  for (const line of logged) t.match(line.err, { type: 'SyntaxError', message: 'Unexpected token \'h\', "[redacted]" is not valid JSON' })
  t.notOk(everything.includes(password.slice(0, 10)), 'not even the part V8 quotes')
})

t.test('the logs stream hides raw bytes and credentials in any field, not only err', async t => {
  const server = await watchedServer(t)
  // The app's own output is the app's serializers' business (realtimeSerializers covers req and err): only the
  // stream is checked here.
  server.app.log.info({ payload: Buffer.from(`password=${password}`), note: `password=${password}` }, 'raw bytes')
  await server.everything()
  const [line] = server.streamed.filter(line => line.msg === 'raw bytes')
  t.match(line, { payload: '[redacted]', note: 'password=[redacted]' })
})

t.test('a line that is not pino\'s is redacted as text', async t => {
  const { redactLogLine } = await import('../../lib/redaction.js')
  t.equal(redactLogLine(`not json: password=${password}`), 'not json: password=[redacted]')
  t.equal(redactLogLine('{"msg":"nothing to hide"}\n'), '{"msg":"nothing to hide"}\n', 'a plain line is left as it is')
})

t.test('the plugin\'s own cookies, by their names, and a request\'s cookies object are hidden', async t => {
  const { redactLogLine, redactLogObject } = await import('../../lib/redaction.js')
  const refresh = 'HKBamq0Rr5W4P2xQ'
  t.equal(redactLogLine(`set directus_refresh_token=${refresh}`), 'set directus_refresh_token=[redacted]')
  t.equal(redactLogLine(`x-refresh-token: ${refresh}`), 'x-refresh-token: [redacted]')
  t.same(redactLogObject({ cookies: { directus_refresh_token: refresh }, directus_session_token: refresh, page: 2 }),
    { cookies: '[redacted]', directus_session_token: '[redacted]', page: 2 })
  t.same(redactLogObject({ my_access_token_count: 3, next_page: 'a' }), { my_access_token_count: 3, next_page: 'a' },
    'names that only hold a credential\'s name are kept')
})

t.test('auth tokens and OpenID Connect\'s id_token are hidden by their names, a session\'s id kept', async t => {
  const { redactLogLine, redactLogObject, redactText } = await import('../../lib/redaction.js')
  const opaque = 'k9Qe3Xz7Lw2pR4'
  const named = ['auth_token', 'auth-token', 'authToken', 'x-auth-token', 'X-Auth-Token', 'oauth_token', 'id_token', 'idToken', 'id-token']
  t.same(redactLogObject({ ...Object.fromEntries(named.map(name => [name, opaque])), sessionId: 's-1', session_id: 's-1', authorId: 3 }),
    { ...Object.fromEntries(named.map(name => [name, '[redacted]'])), sessionId: 's-1', session_id: 's-1', authorId: 3 }, 'as fields')
  t.equal(redactText(`/callback?state=s&id_token=${opaque}&auth_token=${opaque}#oauth_token=${opaque}`),
    '/callback?state=s&id_token=[redacted]&auth_token=[redacted]#oauth_token=[redacted]', 'as query pairs')
  t.equal(redactText(`X-Auth-Token: ${opaque}\r\nAccept: */*`), 'X-Auth-Token: [redacted]\r\nAccept: */*', 'as a header line')
  t.equal(redactLogLine(`{"msg":"x","rawHeaders":["X-Auth-Token","${opaque}"],"body":"{\\"id_token\\":\\"${opaque}\\"}"}\n`),
    '{"msg":"x","rawHeaders":["X-Auth-Token","[redacted]"],"body":"{\\"id_token\\":[redacted]}"}\n', 'in a list of headers, and a JSON member')
  t.equal(redactText(`sessionId=s-1&session_id=s-1&author=ada&token=${opaque}`), 'sessionId=s-1&session_id=s-1&author=ada&token=[redacted]',
    'a session\'s id kept in a line that hides something')
})

t.test('names holding a credential word are hidden, camelCase or not, and a bearer token wherever it is', async t => {
  const server = await watchedServer(t)
  const seed = 'JBSWY3DPEHPK3PXP' // a DirectoryUser's otpSecret: a TOTP seed
  server.app.log.info({
    user: { email: 'x@example.com', otpSecret: seed },
    body: { current_password: 'hunter2-current', new_password: 'hunter2-new', newPassword: 'hunter2-new' },
    env: { ADMIN_PASSWORD: 'hunter2-admin', DB_PASSWD: 'hunter2-db', GPG_PASSPHRASE: 'hunter2-gpg' },
    oauth: { client_secret: 'opaque-client-secret', privateKey: 'opaque-private-key', private_key: 'opaque-private-key' },
    headers: { 'x-api-key': 'opaque-api-key', 'X-API-Key': 'opaque-api-key' },
    settings: { apiKey: 'opaque-api-key', api_key: 'opaque-api-key' },
    rawHeaders: ['Authorization', 'Bearer opaque-bearer-token', 'Proxy-Authorization', 'bearer opaque-bearer-token'],
    note: '{"newPassword":"hunter2-new"} otp_secret=JBSWY3DPEHPK3PXP&next=/ x-api-key: opaque-api-key',
    kept: { passenger: 'Ada', compass: 'north', apiVersion: 2, keyboard: 'qwerty', prose: 'Basic auth is off; the keys are safe' }
  }, 'credential words')
  await server.everything() // the app's own output is its serializers' business: the stream is checked
  const [line] = server.streamed.filter(line => line.msg === 'credential words')
  t.match(line, {
    user: { email: 'x@example.com', otpSecret: '[redacted]' },
    body: { current_password: '[redacted]', new_password: '[redacted]', newPassword: '[redacted]' },
    env: { ADMIN_PASSWORD: '[redacted]', DB_PASSWD: '[redacted]', GPG_PASSPHRASE: '[redacted]' },
    oauth: { client_secret: '[redacted]', privateKey: '[redacted]', private_key: '[redacted]' },
    headers: { 'x-api-key': '[redacted]', 'X-API-Key': '[redacted]' },
    settings: { apiKey: '[redacted]', api_key: '[redacted]' },
    rawHeaders: ['Authorization', '[redacted]', 'Proxy-Authorization', '[redacted]'],
    note: '{"newPassword":[redacted]} otp_secret=[redacted]&next=/ x-api-key: [redacted]',
    kept: { passenger: 'Ada', compass: 'north', apiVersion: 2, keyboard: 'qwerty', prose: 'Basic auth is off; the keys are safe' }
  })
  const streamed = JSON.stringify(line)
  for (const secret of [seed, 'hunter2', 'opaque']) t.notOk(streamed.includes(secret), `no ${secret} in the logs stream`)
})

t.test('a credential-named header\'s value in a list of headers is hidden, whatever its form', async t => {
  const server = await watchedServer(t)
  const request = { method: 'GET', url: '/', headers: ['X-Api-Key', 'abc123opaque', 'Accept', 'text/plain'] }
  server.app.log.info({
    // Node's rawHeaders: names and values in turn, the values as sent.
    incoming: { rawHeaders: ['Host', 'h', 'X-Api-Key', 'abc123opaque', 'Authorization', 'Basic dXNlcjpwYXNz', 'Cookie', 'sid=opaque-sid'] },
    upstream: { rawTrailers: ['Set-Cookie', 'opaque-sid'] },
    request, // undici's and http.request's headers as a flat list
    init: { headers: [['authorization', 'Basic dXNlcjpwYXNz'], ['accept', '*/*']] }, // fetch's list of pairs
    // Lists that are not headers keep their items.
    missing: ['password', 'otp'],
    cors: { allowedHeaders: ['Authorization', 'Content-Type'] },
    note: { headers: ['Authorization', 'is off', 'for now'] }
  }, 'header lists')
  await server.everything()
  const [line] = server.streamed.filter(line => line.msg === 'header lists')
  t.match(line, {
    incoming: { rawHeaders: ['Host', 'h', 'X-Api-Key', '[redacted]', 'Authorization', '[redacted]', 'Cookie', '[redacted]'] },
    upstream: { rawTrailers: ['Set-Cookie', '[redacted]'] },
    request: { headers: ['X-Api-Key', '[redacted]', 'Accept', 'text/plain'] },
    init: { headers: [['authorization', '[redacted]'], ['accept', '*/*']] },
    missing: ['password', 'otp'],
    cors: { allowedHeaders: ['Authorization', 'Content-Type'] },
    note: { headers: ['Authorization', 'is off', 'for now'] }
  })
  const streamed = JSON.stringify(line)
  for (const secret of ['abc123opaque', 'dXNlcjpwYXNz', 'opaque-sid']) t.notOk(streamed.includes(secret), `no ${secret} in the logs stream`)
})

t.test('a JSON member whose name is spelled with escapes is hidden, its name read as JSON.parse reads it', async t => {
  const { redactLogLine, redactUrl } = await import('../../lib/redaction.js')
  const frame = String.raw`{"type":"auth","access\u005ftoken":"opaque-at"}`
  t.same(JSON.parse(frame), { type: 'auth', access_token: 'opaque-at' }, 'the name is access_token to JSON.parse')
  t.equal(redactUrl(`invalid frame ${frame}`), String.raw`invalid frame {"type":"auth","access\u005ftoken":[redacted]}`)
  // No credential's word is left to the quick scan: a printable character's escape sends the text on.
  t.equal(redactUrl(String.raw`{"p\u0061ssword":"hunter2","\u0072efresh_token":"opaque-rt"}`),
    String.raw`{"p\u0061ssword":[redacted],"\u0072efresh_token":[redacted]}`)
  // As pino writes a message quoting it: the escapes' backslashes escaped again.
  const line = `${JSON.stringify({ level: 30, msg: String.raw`echo {"p\u0061ssword":"hunter2"}` })}\n`
  t.equal(redactLogLine(line), `${JSON.stringify({ level: 30, msg: String.raw`echo {"p\u0061ssword":[redacted]}` })}\n`)
  t.equal(redactLogLine(String.raw`not json: {\"p\\u0061ssword\":\"hunter2\"}`), String.raw`not json: {\"p\\u0061ssword\":[redacted]}`)
  t.equal(redactUrl(String.raw`{"caf\u00e9":"x","n\u0061me":"Ada","token\u005fcount":2}`),
    String.raw`{"caf\u00e9":"x","n\u0061me":"Ada","token\u005fcount":2}`, 'other members are kept')
  // Hostile text: names of escapes that never end, or that end over and over; each costs one scan.
  const endless = `"${'\\u0061'.repeat(200_000)}`
  t.equal(redactUrl(endless), endless)
  const restarting = '"\\u0061"'.repeat(100_000)
  t.equal(redactUrl(restarting), restarting)
})

t.test('a token carried in the subprotocol list is hidden, the protocols kept', async t => {
  const server = await watchedServer(t)
  const upgrade = (protocols: string) => ({ 'sec-websocket-protocol': protocols, 'sec-websocket-version': '13' })
  server.app.log.info({
    // A browser's WebSocket cannot set headers: clients smuggle the token as a subprotocol.
    dotted: upgrade('graphql-transport-ws, access_token.abc123opaque'),
    kubernetes: upgrade('base64url.bearer.authorization.k8s.io.YWJjMTIzb3BhcXVl, base64.binary.k8s.io'),
    following: upgrade('Authorization, abc123opaque'),
    jwt: upgrade(`graphql-ws, ${server.credentials.accessToken}`),
    rawHeaders: ['Sec-WebSocket-Protocol', 'graphql-transport-ws, access_token, abc123opaque', 'Host', 'h'],
    plain: upgrade('graphql-transport-ws, graphql-ws')
  }, 'subprotocols')
  await server.everything() // the app's own output is its serializers' business: the stream is checked
  const [line] = server.streamed.filter(line => line.msg === 'subprotocols')
  const protocols = (value: string) => ({ 'sec-websocket-protocol': value, 'sec-websocket-version': '13' })
  t.match(line, {
    dotted: protocols('graphql-transport-ws, access_token.[redacted]'),
    kubernetes: protocols('base64url.bearer.[redacted], base64.binary.k8s.io'),
    following: protocols('Authorization, [redacted]'),
    jwt: protocols('graphql-ws, [redacted]'),
    rawHeaders: ['Sec-WebSocket-Protocol', 'graphql-transport-ws, access_token, [redacted]', 'Host', 'h'],
    plain: protocols('graphql-transport-ws, graphql-ws')
  })
  for (const secret of ['abc123opaque', 'YWJjMTIzb3BhcXVl', server.credentials.accessToken]) {
    t.notOk(JSON.stringify(line).includes(secret), `no ${secret.slice(0, 12)} in the logs stream`)
  }

  const { redactUrl } = await import('../../lib/redaction.js')
  t.equal(redactUrl('GET /graphql HTTP/1.1\r\nSec-WebSocket-Protocol: graphql-transport-ws, access_token.abc123opaque\r\nHost: h\r\n'),
    'GET /graphql HTTP/1.1\r\nSec-WebSocket-Protocol: graphql-transport-ws, access_token.[redacted]\r\nHost: h\r\n', 'in a raw request')
  t.equal(redactUrl('{"sec-websocket-protocol":"Authorization, abc123opaque","host":"h"}'),
    '{"sec-websocket-protocol":"Authorization, [redacted]","host":"h"}', 'in JSON text')
  t.equal(redactUrl('needs authorization, then abc123opaque'), 'needs authorization, then abc123opaque', 'only in that header')
})

t.test('a URL\'s password is hidden up to the last @ before the host, as WHATWG URL (and ioredis) reads it', async t => {
  const { redactUrl, redactLogLine } = await import('../../lib/redaction.js')
  for (const [url, hidden] of [
    ['redis://:p@ssw0rd@redis.internal:6379/0', 'redis://:[redacted]@redis.internal:6379/0'],
    ['redis://default:p@ss:w@rd@redis.internal', 'redis://default:[redacted]@redis.internal'],
    ['rediss://us@er:p@ss@host/1?db=2', 'rediss://us@er:[redacted]@host/1?db=2'],
    ['https://user:pw@host/path?mail=a@b.example#x@y', 'https://user:[redacted]@host/path?mail=a@b.example#x@y']
  ]) {
    const { password } = new URL(url)
    t.ok(password.length > 0, `${url} has a password`)
    t.equal(redactUrl(`connecting to ${url}`), `connecting to ${hidden}`, url)
    t.equal(redactLogLine(`${JSON.stringify({ level: 30, msg: url })}\n`), `${JSON.stringify({ level: 30, msg: hidden })}\n`, 'streamed so')
  }
  for (const text of ['redis://host:6379/0 for a@b.example', 'redis://user@host:6379', '//a:b/c@d']) {
    t.equal(redactUrl(text), text, `no password in ${text}`)
  }
  // Hostile text: user infos that never end, or that end over and over; each costs one scan.
  const endless = `r://a:${'x@'.repeat(500_000)}`
  t.ok(redactUrl(endless) === 'r://a:[redacted]@', 'a password of @s, hidden whole')
  const unended = `r://a:${'x'.repeat(1_000_000)}`
  t.ok(redactUrl(unended) === unended, 'a password with no @ after it')
  const restarting = 'r://a:b'.repeat(150_000)
  t.ok(redactUrl(restarting) === restarting, 'user infos starting over and over')
  const users = `r://${'a@'.repeat(500_000)}`
  t.ok(redactUrl(users) === users, 'a user of @s, with no password')
})

t.test('a bearer token in text is hidden, the rest of the text kept', async t => {
  const { redactUrl } = await import('../../lib/redaction.js')
  t.equal(redactUrl('upstream 401 for Bearer abc.DEF-_~+/gh== (expired)'), 'upstream 401 for Bearer [redacted] (expired)')
  t.equal(redactUrl('curl -H "Authorization: Bearer abc"'), 'curl -H "Authorization: [redacted]')
  t.equal(redactUrl('Use Basic auth or a Bearer [token]'), 'Use Basic auth or a Bearer [token]', 'a placeholder is not a token')
})

t.test('a line whose only credential is one of these words is not let through by the quick scan', async t => {
  const { redactLogLine } = await import('../../lib/redaction.js')
  for (const name of ['GPG_PASSPHRASE', 'apiKey', 'api_key', 'x-api-key', 'privateKey', 'private_key', 'private-key']) {
    t.equal(redactLogLine(`{"msg":"x","${name}":"k"}\n`), `{"msg":"x","${name}":"[redacted]"}\n`, name)
  }
  t.equal(redactLogLine('{"msg":"x","rawHeaders":["X-Upstream","Bearer k"]}\n'), '{"msg":"x","rawHeaders":["X-Upstream","Bearer [redacted]"]}\n')
})
