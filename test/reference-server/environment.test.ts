// The reference server's environment (README "The reference server"): a USERS_FILE typo fails boot without its text
// reaching stderr, each user is listed once (email and id, the admin's included), and a variable set but empty (as
// compose files write them) is unset; a wrong one fails boot naming it.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { buildReferenceServer, type ReferenceServer } from '../../example/app.js'
import { listenAddress } from '../../example/listen-address.js'
import { environmentVariables } from '../../lib/config.js'
import { admin, connect, secret } from '../helpers.js'

const baseEnv = { ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password, SECRET: secret, LOG_LEVEL: 'silent' }
const invalid = 'FST_REALTIME_INVALID_CONFIG'
const alice = { email: 'alice@example.com', password: 'Alice-Real-Passw0rd!' }
const bob = { email: 'bob@example.com', password: 'Bob-Real-Passw0rd', role: 'editor' }

async function start (t: Test, env: Record<string, string | undefined>): Promise<ReferenceServer> {
  const server = await buildReferenceServer(env)
  t.teardown(() => server.app.close())
  return server
}

async function login (server: ReferenceServer, email: string, password: string) {
  return server.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password, mode: 'json' } })
}

// `npm start` beside this file's build: the TypeScript source under tsx, `.build/example/server.js` under `npm test`.
const serverFile = fileURLToPath(new URL(`../../example/server${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url))

/** `npm start` as a container runs it, with `env` only (and PATH); `onLine` hears each line of its stdout. */
function runServer (env: Record<string, string>, onLine: (line: string, server: ChildProcess) => void = () => {}): Promise<{ code: number | null, output: string }> {
  const server = spawn(process.execPath, [...process.execArgv, serverFile], { env: { ...process.env, ADMIN_EMAIL: '', ADMIN_PASSWORD: '', ...env } })
  let output = ''
  let partial = ''
  server.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
    const lines = (partial + chunk).split('\n')
    partial = lines.pop()!
    for (const line of lines) onLine(line, server)
  })
  server.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  return new Promise(resolve => server.once('close', code => { resolve({ code, output }) }))
}

t.test('a USERS_FILE typo fails boot naming USERS_FILE and the line, and no password reaches stderr', async t => {
  const users = [{ ...alice, admin: true }, bob]
  const dir = t.testdir({
    // A trailing comma, and single quotes: the typos a hand-edited file gets.
    'comma.json': JSON.stringify(users).replace(/}]$/, ',}]'),
    'quotes.json': `[\n  {\n    'email': '${alice.email}', 'password': '${alice.password}'\n  }\n]`,
    // V8 quotes the text around an unexpected token in its message, and gives no position.
    'unquoted.json': `[{"email":"${bob.email}","password":${bob.password}}]`,
    'quoted-value.json': `[{"email":"${bob.email}",\r\n"password":'${bob.password}'}]`,
    'cut.json': JSON.stringify(users).slice(0, 60),
    'after.json': `${JSON.stringify(users)}\n${bob.password}`
  })
  const cases = [
    ['comma.json', / is not JSON \(line 1, column 153\)$/],
    ['quotes.json', / is not JSON \(line 3, column 5\)$/],
    ['unquoted.json', / is not JSON \(line 1, column 40\)$/],
    ['quoted-value.json', / is not JSON \(line 2, column 12\)$/],
    ['cut.json', / is not JSON \(line 1, column 61\)$/],
    ['after.json', / is not JSON \(line 2, column 1\)$/]
  ] as const
  for (const [file, where] of cases) {
    const path = join(dir, file)
    const failed = await buildReferenceServer({ ...baseEnv, USERS_FILE: path }).then(() => null, (error: Error & { code: string }) => error)
    t.match(failed, { code: invalid, message: `Invalid configuration: USERS_FILE ${path}` }, file)
    t.match(failed?.message, where, `${file}: where it went wrong`)
    t.notMatch(failed?.message, /Passw0rd/, `${file}: no password in the message`)
  }

  const { code, output } = await runServer({ ...baseEnv, LOG_LEVEL: 'info', PORT: '0', USERS_FILE: join(dir, 'comma.json') })
  t.not(code, 0, 'the server did not start')
  t.match(output, /Invalid configuration: USERS_FILE .*comma\.json is not JSON \(line 1, column 153\)/, 'it says why')
  t.notMatch(output, /Passw0rd/, 'no password on stdout or stderr')
  t.notMatch(output, /listening/)
})

t.test('npm start listens where HOST and PORT say, prints how to log in, and ends on SIGTERM', async t => {
  for (const password of ['', admin.password]) {
    const messages: string[] = []
    let pong: string | null = null
    const { code } = await runServer({ SECRET: secret, HOST: '', PORT: '0', ADMIN_PASSWORD: password }, (line, server) => {
      const { msg } = JSON.parse(line) as { msg: string }
      messages.push(msg)
      const listening = /listening on (http:\/\/[^ ]+)/.exec(msg)
      if (listening) {
        fetch(`${listening[1]}/server/ping`).then(response => response.text()).then(body => { pong = body }, () => {}).finally(() => server.kill('SIGTERM'))
      }
    })
    t.equal(code, 0, 'SIGTERM closed it')
    t.equal(pong, 'pong', 'it answered on the port it printed')
    t.match(messages.find(msg => msg.startsWith('fastify-realtime reference server')), /listening on http:\/\/127\.0\.0\.1:\d+ /, 'HOST empty: loopback')
    t.match(messages.find(msg => msg.startsWith('log in:')), password === ''
      ? /"email":"admin@example.com","password":"[\w-]{16}" \(generated for this start/
      : /"email":"admin@example.com","password":"<ADMIN_PASSWORD>"/, password === '' ? 'ADMIN_PASSWORD empty: one is generated' : 'ADMIN_PASSWORD set')
  }
  const { code, output } = await runServer({ SECRET: secret, PORT: 'abc' })
  t.not(code, 0)
  t.match(output, /Invalid configuration: PORT must be an integer from 0 to 65535/)
})

t.test('a USERS_FILE that is missing, or holds no array, fails boot naming USERS_FILE', async t => {
  const dir = t.testdir({ 'object.json': JSON.stringify(bob), 'empty.json': '[]' })
  await t.rejects(start(t, { ...baseEnv, USERS_FILE: join(dir, 'missing.json') }),
    { code: invalid, message: `Invalid configuration: USERS_FILE ${join(dir, 'missing.json')} cannot be read (ENOENT)` })
  await t.rejects(start(t, { ...baseEnv, USERS_FILE: join(dir, 'object.json') }),
    { code: invalid, message: `Invalid configuration: USERS_FILE ${join(dir, 'object.json')} must hold a JSON array of users: [{ "email", "password" }]` })
  const server = await start(t, { ...baseEnv, USERS_FILE: join(dir, 'empty.json') })
  t.equal((await login(server, admin.email, admin.password)).statusCode, 200, 'an empty list boots: the admin alone')
})

t.test('a wrong USERS_FILE entry fails boot naming its index, and no password', async t => {
  const entries = [alice, bob, { password: 'Carol-Secret-Passw0rd' }, { email: 'dan@example.com', password: 'Dan-Secret-Passw0rd', otpSecret: 'not base32!' }]
  const dir = t.testdir({
    'no-email.json': JSON.stringify(entries.slice(0, 3)),
    'no-password.json': JSON.stringify([alice, { email: 'carol@example.com' }]),
    'not-a-user.json': JSON.stringify([alice, bob, 'Carol-Secret-Passw0rd']),
    'bad-otp.json': JSON.stringify([alice, entries[3]])
  })
  const failures = {
    'no-email.json': 'USERS_FILE[2]\'s email must be an email address',
    'no-password.json': 'USERS_FILE[1]\'s password must be a non-empty string',
    'not-a-user.json': 'USERS_FILE[2] must be a user: { email, password }',
    'bad-otp.json': 'USERS_FILE[1]\'s otpSecret must be a base32 TOTP secret of 16 characters or more'
  }
  for (const [file, message] of Object.entries(failures)) {
    const failed = await buildReferenceServer({ ...baseEnv, USERS_FILE: join(dir, file) }).then(() => null, (error: Error & { code: string }) => error)
    t.match(failed, { code: invalid, message: `Invalid configuration: ${message}` }, file)
    t.notMatch(failed?.message, /Passw0rd|not base32/, `${file}: no password, no secret`)
  }
})

t.test('USERS_FILE users sharing an id fail boot: no one logs in as another', async t => {
  const dir = t.testdir({
    'users.json': JSON.stringify([{ ...alice, id: 'user-1', role: 'editor' }, { email: 'mallory@example.com', password: 'mallory-pw', id: 'user-1', role: 'viewer' }]),
    'numbers.json': JSON.stringify([{ ...alice, id: 1 }])
  })
  await t.rejects(start(t, { ...baseEnv, USERS_FILE: join(dir, 'users.json') }),
    { code: invalid, message: 'Invalid configuration: USERS_FILE[1] has the id of USERS_FILE[0]: give each user an id of their own' })
  await t.rejects(start(t, { ...baseEnv, USERS_FILE: join(dir, 'numbers.json') }),
    { code: invalid, message: 'Invalid configuration: USERS_FILE[0]\'s id must be a non-empty string' })
})

t.test('USERS_FILE cannot list a user twice, nor replace the admin', async t => {
  const dir = t.testdir({
    'twice.json': JSON.stringify([{ email: 'bob@example.com', password: 'one' }, { email: 'BOB@example.com ', password: 'two', admin: true }]),
    'admin.json': JSON.stringify([{ email: admin.email, password: 'x', admin: false }])
  })
  await t.rejects(start(t, { ...baseEnv, USERS_FILE: join(dir, 'twice.json') }),
    { code: invalid, message: 'Invalid configuration: USERS_FILE[1] has the email of USERS_FILE[0]: list each user once' })
  await t.rejects(start(t, { ...baseEnv, USERS_FILE: join(dir, 'admin.json') }),
    { code: invalid, message: `Invalid configuration: ${admin.email} is already in the directory: add each user once` })
})

t.test('a user no login could name fails boot naming the variable or the USERS_FILE entry, and no password', async t => {
  const longPassword = 'Long-Secret-Passw0rd'.repeat(52) // 1040 characters
  const longEmail = `${'a'.repeat(243)}@example.com` // 255 characters
  const dir = t.testdir({ 'users.json': JSON.stringify([alice, { email: 'carol@example.com', password: longPassword }]) })
  const failures: [Record<string, string>, string][] = [
    [{ ADMIN_PASSWORD: longPassword }, 'ADMIN_PASSWORD must be at most 1024 characters: no login could carry it'],
    [{ ADMIN_EMAIL: longEmail }, 'ADMIN_EMAIL must be at most 254 characters once normalised: no login could name it'],
    [{ USERS_FILE: join(dir, 'users.json') }, 'USERS_FILE[1]\'s password must be at most 1024 characters: no login could carry it']
  ]
  for (const [env, message] of failures) {
    const failed = await buildReferenceServer({ ...baseEnv, ...env }).then(() => null, (error: Error & { code: string }) => error)
    t.match(failed, { code: invalid, message: `Invalid configuration: ${message}` }, Object.keys(env)[0])
    t.notMatch(failed?.message, /Passw0rd/, 'no password')
  }
})

t.test('ADMIN_EMAIL and ADMIN_PASSWORD set but empty are unset: the default email, a generated password', async t => {
  const server = await start(t, { ...baseEnv, ADMIN_EMAIL: '', ADMIN_PASSWORD: '' })
  t.equal(server.adminEmail, 'admin@example.com')
  t.type(server.generatedPassword, 'string')
  t.equal((await login(server, 'admin@example.com', server.generatedPassword!)).statusCode, 200)
})

t.test('REDIS_URL without SECRET or ADMIN_PASSWORD fails boot: each process would generate its own', async t => {
  // Nothing is connected: the check comes first.
  for (const name of ['SECRET', 'ADMIN_PASSWORD']) {
    for (const unset of [undefined, '']) {
      await t.rejects(start(t, { ...baseEnv, REDIS_URL: 'redis://127.0.0.1:9', [name]: unset }), {
        code: invalid,
        message: `Invalid configuration: REDIS_URL is set without ${name}: every process on one Redis needs the same ${name} (one generated per start is this process's alone)`
      }, `${name}=${unset}`)
    }
  }
})

t.test('ACCESS_TOKEN_ISSUER set but empty, with JWKS_URL: the server\'s own tokens open sockets', async t => {
  // Nothing listens there: the server's own tokens need no provider key.
  const server = await start(t, { ...baseEnv, JWKS_URL: 'http://127.0.0.1:9/jwks.json', JWT_AUDIENCE: 'realtime-api', JWT_ISSUER: 'https://id.example.com/', ACCESS_TOKEN_ISSUER: '' })
  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const response = await login(server, admin.email, admin.password)
  t.equal(response.statusCode, 200)
  const client = await connect(`ws://127.0.0.1:${(server.app.server.address() as AddressInfo).port}/websocket`)
  client.send({ type: 'auth', access_token: response.json().data.access_token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  await client.close()
})

t.test('LOG_LEVEL and JWKS_URL of no use fail boot naming them; LOG_LEVEL set but empty is info', async t => {
  for (const level of ['verbose', 'toString']) {
    await t.rejects(start(t, { ...baseEnv, LOG_LEVEL: level }),
      { code: invalid, message: 'Invalid configuration: LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent' }, level)
  }
  for (const url of ['not a url', 'file:///etc/jwks.json']) {
    await t.rejects(start(t, { ...baseEnv, JWKS_URL: url, JWT_AUDIENCE: 'realtime-api' }),
      { code: invalid, message: 'Invalid configuration: JWKS_URL must be an http:// or https:// URL' }, url)
  }
  const server = await start(t, { ...baseEnv, LOG_LEVEL: '' })
  t.equal(server.app.log.level, 'info')
})

t.test('HOST and PORT: empty is unset, and a PORT that is no port fails naming PORT', async t => {
  t.same(listenAddress({}), { host: '127.0.0.1', port: 8055 })
  t.same(listenAddress({ HOST: '', PORT: '' }), { host: '127.0.0.1', port: 8055 }, 'not every interface, not a random port')
  t.same(listenAddress({ HOST: '0.0.0.0', PORT: '0' }), { host: '0.0.0.0', port: 0 })
  t.same(listenAddress({ PORT: '65535' }), { host: '127.0.0.1', port: 65_535 })
  for (const port of ['abc', '65536', '-1', '80.5', ' 80', '1e3', '123456']) {
    t.throws(() => listenAddress({ PORT: port }), { code: invalid, message: 'Invalid configuration: PORT must be an integer from 0 to 65535' }, port)
  }
})

t.test('the variables of README\'s reference-server table are those example/ reads beside the plugin\'s, and docs/protocol.md names each', async t => {
  const read = new Set(readdirSync('example').filter(file => file.endsWith('.ts'))
    .flatMap(file => [...readFileSync(join('example', file), 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map(match => match[1]!)))
  const own = [...read].filter(name => !Object.hasOwn(environmentVariables(), name)).sort()
  const readme = readFileSync('README.md', 'utf8')
  const start = readme.indexOf('## The reference server')
  const table = readme.slice(start, readme.indexOf('\n\n', readme.indexOf('| variable |', start)))
  const listed = table.split('\n').slice(2).flatMap(row => [...row.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map(match => match[1]!))
  t.same(listed.filter(name => !read.has(name)), [], 'listed, not read')
  t.same(own.filter(name => !listed.includes(name)), [], 'read, not listed')
  const protocol = readFileSync('docs/protocol.md', 'utf8')
  t.same(own.filter(name => !protocol.includes(`\`${name}\``)), [], 'read, not in docs/protocol.md')
})
