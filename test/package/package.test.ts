// The package as a user gets it: `npm pack` (which builds dist/ through `prepack`), the tarball installed into a
// consumer project of its own, then the plugin imported from ES modules and required from CommonJS and registered on
// a Fastify app, and the consumer type-checked by tsc under moduleResolution node16 (an ESM and a CommonJS project),
// bundler and node10, strict, exactOptionalPropertyTypes and skipLibCheck false, with graphql (an optional peer) installed and without,
// the app's own ioredis 6 beside the plugin's 5; a second consumer installed without hoisting, on graphql 17, serving
// /graphql; a bundle of an app made by esbuild, run with argon2 alone beside it; and a third that type-checks the
// README's TypeScript blocks, whose links' anchors are checked against its headings. Not in `npm test` (it packs and
// installs: `npm run test:package`). The installs prefer npm's cache, which CI's `npm ci` has just filled.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { anchorsOf, blocksOf, typeScriptFiles } from './readme-blocks.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const installed = (name: string): string =>
  (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version

interface Ran { code: number, stdout: string, stderr: string }

function run (command: string, args: string[], cwd: string): Promise<Ran> {
  return new Promise(resolve => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
    })
  })
}

async function ok (command: string, args: string[], cwd: string): Promise<string> {
  const ran = await run(command, args, cwd)
  if (ran.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${ran.code}):\n${ran.stdout}\n${ran.stderr}`)
  return ran.stdout
}

function write (file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
}

const work = mkdtempSync(join(tmpdir(), 'fastify-realtime-package-'))
// KEEP_CONSUMER=1 keeps it, to look into a failure.
if (process.env.KEEP_CONSUMER) t.comment(`consumer kept in ${work}`)
else t.teardown(() => rmSync(work, { recursive: true, force: true }))

// The tarball, and its files as the consumer's node_modules has them.
const started = Date.now()
const seconds = () => `${Math.round((Date.now() - started) / 1000)} s`
await ok('npm', ['pack', '--silent', '--pack-destination', work], root)
t.comment(`built and packed: ${seconds()}`)
const tarball = join(work, readdirSync(work).find(file => file.endsWith('.tgz'))!)
const consumer = join(work, 'consumer')
// With argon2's install script approved, as the README says (npm 11's allowScripts): the install is strict, so a
// dependency that brings another install script fails it here before it leaves users a notice to review.
write(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', allowScripts: { argon2: true } }))
// The second consumer installs beside the first (its test is at the end).
const nested = join(work, 'nested')
write(join(nested, 'package.json'), JSON.stringify({ name: 'nested', private: true, type: 'module' }))
// graphql 17 asks for Node 22 in its engines: npm only warns, and it runs on Node 20.
const nestedInstall = run('npm', [
  'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--install-strategy=nested', tarball,
  `fastify@${installed('fastify')}`, 'graphql@17'
], nested)
// The third consumer type-checks the README's TypeScript blocks (its test is at the end), with the packages they import.
const readme = join(work, 'readme')
write(join(readme, 'package.json'), JSON.stringify({ name: 'readme', private: true, type: 'module' }))
const readmeInstall = run('npm', [
  'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball,
  ...['fastify', 'graphql', 'graphql-ws', '@fastify/jwt', '@fastify/websocket', 'get-jwks', 'mercurius',
    '@types/node', '@types/ws'].map(name => `${name}@${installed(name)}`),
  // The SDK as `npm i @directus/sdk` installs it on Node 22 and later (on Node 20, npm picks 18), whose `login` the
  // README writes (npm only warns of its Node 22).
  `@directus/sdk@${installed('@directus/sdk-26')}`
], readme)
// The peer dependencies (fastify, and graphql for the GraphQL endpoint), @types/node, @fastify/jwt for the project
// of an app that registers its own, and the app's own ioredis, of 6 (what `npm i ioredis` installs: the plugin's 5
// goes under it), at the versions the repository tests with, so that npm's cache has them. Install scripts run, as for
// a user: argon2 builds itself.
await ok('npm', [
  'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--strict-allow-scripts', tarball,
  ...['fastify', 'graphql', '@types/node', '@fastify/jwt'].map(name => `${name}@${installed(name)}`),
  `ioredis@${installed('ioredis-6')}`
], consumer)
t.comment(`installed: ${seconds()}`)
const packageDir = join(consumer, 'node_modules', 'fastify-realtime')
// Not what npm nests under the package: its ioredis 5, beside the app's 6.
const shipped = readdirSync(packageDir, { recursive: true, withFileTypes: true })
  .filter(entry => entry.isFile())
  .map(entry => relative(packageDir, join(entry.parentPath, entry.name)).split(sep).join('/'))
  .filter(file => !file.startsWith('node_modules/'))
  .sort()

t.test('the tarball: the built plugin and its documents, nothing else, and nothing that points out of it', async t => {
  for (const file of ['package.json', 'README.md', 'LICENSE', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts']) {
    t.ok(shipped.includes(file), `ships ${file}`)
  }
  const allowed = /^(package\.json|README\.md|LICENSE|docs\/.+|dist\/(lib|types|cjs)\/.+\.(js|d\.ts|json))$/
  t.same(shipped.filter(file => !allowed.test(file)), [], 'no sources, source maps, tests, examples or benchmarks')
  t.same(shipped.filter(file => /^dist\/cjs\/.+\.json$/.test(file)), ['dist/cjs/package.json'])

  // Every relative import, require and declaration reference of the built files, and every relative link of the
  // documents, lands on a shipped file, and a link's anchor on a heading of the document it names.
  const dangling: string[] = []
  const unanchored: string[] = []
  for (const file of shipped) {
    const text = readFileSync(join(packageDir, file), 'utf8')
    if (file.endsWith('.js') && text.includes('sourceMappingURL')) dangling.push(`${file}: a source map comment`)
    const specifiers = file.endsWith('.md')
      ? [...text.matchAll(/\]\((?!https?:|mailto:|#)([^)\s#]+)(?:#[^)]*)?\)/g)].map(match => match[1])
      : [...text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|reference path=)['"](\.{1,2}\/[^'"]+)['"]/g)].map(match => match[1])
    for (const specifier of specifiers) {
      const target = join(dirname(file), specifier!).split(sep).join('/')
      if (!shipped.includes(target)) dangling.push(`${file}: ${specifier}`)
    }
    if (!file.endsWith('.md')) continue
    for (const [link, path, anchor] of text.matchAll(/\]\((?!https?:|mailto:)([^)\s#]*)#([^)\s]+)\)/g)) {
      const target = path ? join(dirname(file), path).split(sep).join('/') : file
      if (!shipped.includes(target)) continue
      if (!anchorsOf(readFileSync(join(packageDir, target), 'utf8')).has(anchor!)) unanchored.push(`${file}: ${link}`)
    }
  }
  t.same(dangling, [], 'no import, reference or link to a file the package does not ship')
  t.same(unanchored, [], "every link's anchor is a heading of the document it names")
})

// The same checks from both module systems, printed as JSON: the entry it resolves to, the exports, a registration with
// a 32-character secret, a user directory (argon2), the GraphQL endpoint (loaded on demand), a login; then every module
// of the build it uses loads, the ones the plugin loads only on demand included.
const checks = `
const directory = new lib.UserDirectory({ passwordHashing: { memoryCost: 1024, timeCost: 1 } })
await directory.add({ email: 'ada@example.com', password: 'correct horse battery', role: 'admin', admin: true })
const app = Fastify()
await app.register(plugin, {
  secret: 'a-packaging-test-secret-of-32-chars!',
  users: directory,
  graphql: { schema: buildSchema('type Query { hello: String }') }
})
await app.ready()
const tokens = await app.realtime.login({ email: 'ada@example.com', password: 'correct horse battery' })
const error = new lib.RealtimeError('FORBIDDEN', 'Not yours.')
const result = {
  entry: entry.slice(entry.indexOf('fastify-realtime/')),
  exports: Object.keys(lib).sort(),
  routes: ['/websocket', '/websocket/logs', '/graphql'].filter(url => app.hasRoute({ method: 'GET', url })),
  loggedIn: typeof tokens.access_token === 'string' && typeof tokens.refresh_token === 'string',
  error: [error instanceof Error, error.code, error.message],
  closeCode: lib.CloseCode.Unauthorized,
  redacted: lib.redactUrl('redis://user:hunter2@localhost:6379').includes('hunter2') ? 'leaked' : 'redacted'
}
await app.close()
const built = dirname(fileURLToPath(entry))
let modules = 0
for (const file of readdirSync(built, { recursive: true })) {
  if (file.endsWith('.js')) { await load(join(built, file)); modules++ }
}
result.modules = modules
console.log(JSON.stringify(result))
`

const esm = `import Fastify from 'fastify'
import { buildSchema } from 'graphql'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import plugin, * as lib from 'fastify-realtime'

const entry = import.meta.resolve('fastify-realtime')
const load = (file) => import(pathToFileURL(file).href)
${checks}`

const cjs = `const Fastify = require('fastify')
const { buildSchema } = require('graphql')
const { readdirSync } = require('node:fs')
const { dirname, join } = require('node:path')
const { pathToFileURL, fileURLToPath } = require('node:url')
const lib = require('fastify-realtime')
const plugin = require('fastify-realtime').default

const entry = pathToFileURL(require.resolve('fastify-realtime')).href
const load = (file) => require(file)
async function main () {
  // The plugin itself is what require() gives, as with the official Fastify plugins.
  const bare = Fastify()
  bare.register(require('fastify-realtime'), { secret: 'a-packaging-test-secret-of-32-chars!' })
  await bare.ready()
  const same = [plugin === lib, lib.fastifyRealtime === lib, typeof bare.realtime.send]
  await bare.close()
${checks.replace('console.log(JSON.stringify(result))', 'result.same = same\nconsole.log(JSON.stringify(result))')}
}
main().catch(error => { console.error(error); process.exit(1) })
`

write(join(consumer, 'runtime.mjs'), esm)
write(join(consumer, 'runtime.cjs'), cjs)

// The checks below are CPU-bound: two at a time.
let running = 0
const waiting: (() => void)[] = []
async function queued (command: string, args: string[], cwd = consumer): Promise<Ran> {
  // A finished check hands its place to the next one waiting.
  if (running < 2) running++
  else await new Promise<void>(resolve => waiting.push(resolve))
  try {
    return await run(command, args, cwd)
  } finally {
    const next = waiting.shift()
    if (next) next()
    else running--
  }
}
const esmRun = queued(process.execPath, ['runtime.mjs'])
const cjsRun = queued(process.execPath, ['runtime.cjs'])

const expected = {
  routes: ['/websocket', '/websocket/logs', '/graphql'],
  loggedIn: true,
  error: [true, 'FORBIDDEN', 'Not yours.'],
  closeCode: 4401,
  redacted: 'redacted'
}

t.test('import from an ES module: the ESM build, registered on an app', async t => {
  const ran = await esmRun
  t.equal(ran.code, 0, ran.code === 0 ? 'runs' : `fails:\n${ran.stderr}${ran.stdout}`)
  const result = JSON.parse(ran.stdout)
  t.match(result, { ...expected, entry: 'fastify-realtime/dist/lib/index.js' })
  t.ok(result.exports.includes('default') && result.exports.includes('RealtimeError') && result.exports.includes('redactUrl'))
  t.ok(result.modules > 10, `${result.modules} modules load`)
})

t.test('require from CommonJS: the CommonJS build, the plugin itself with its named exports on it', async t => {
  const ran = await cjsRun
  t.equal(ran.code, 0, ran.code === 0 ? 'runs' : `fails:\n${ran.stderr}${ran.stdout}`)
  const result = JSON.parse(ran.stdout)
  t.match(result, { ...expected, entry: 'fastify-realtime/dist/cjs/index.js' })
  t.same(result.same, [true, true, 'function'], "require('fastify-realtime') is the plugin, and so are .default and .fastifyRealtime")
  // `fastifyRealtime` is the CommonJS entry's own (the ES module may name it too).
  const named = (exports: string[]) => exports.filter(name => name !== 'fastifyRealtime')
  const esmExports = (JSON.parse((await esmRun).stdout) as { exports: string[] }).exports
  t.same(named(result.exports), named(esmExports), 'the same exports as the ES module')
  t.ok(result.modules > 10, `${result.modules} modules load`)
})

// What a TypeScript user writes, checked with the repository's tsc against the installed package: a registration with
// typed options (a wrong option must fail), options built apart with `satisfies`, the named exports, and the
// decorators' types: the plugin's, and none of those of the plugins it registers itself, which this app never
// registers (the declarations once imported @fastify/jwt's types, and its augmentation typed `app.jwt` and
// `request.user` on every app). With graphql
// installed, a schema is graphql's GraphQLSchema (SDL must fail); without it, the same minus the schema must check as well.
const usageOf = (graphql: boolean) => `import Fastify from 'fastify'
${graphql ? "import { buildSchema } from 'graphql'\n" : ''}import { Cluster, Redis } from 'ioredis'
import realtime, { CloseCode, RealtimeError, UserDirectory, redactUrl, type RealtimeApi, type RealtimeOptions } from 'fastify-realtime'

export async function start (): Promise<RealtimeApi> {
  const options: RealtimeOptions = { secret: 'a-packaging-test-secret-of-32-chars!', users: new UserDirectory() }
  // What the README writes: settings read from the environment, each possibly unset.
  const fromEnv: RealtimeOptions = { secret: process.env.SECRET, publicUrl: process.env.PUBLIC_URL, redis: process.env.REDIS_URL, rest: { path: process.env.WS_PATH } }
  const app = Fastify()
  await app.register(realtime, options)
  await app.register(realtime, { ...fromEnv, rest: false })
  // @ts-expect-error the options are typed: a secret is a string
  await app.register(realtime, { secret: 42 })
  // The app's own ioredis client and Cluster, of ioredis 6 (the plugin's own is 5).
  await app.register(realtime, { ...options, redis: new Redis({ lazyConnect: true }) })
  await app.register(realtime, { ...options, redis: new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true }) })
  // Fastify's register options are options too.
  const built = { secret: process.env.SECRET, prefix: '/api', logLevel: 'warn', rest: { auth: 'public' } } satisfies RealtimeOptions
  await app.register(async (scope) => { await scope.register(realtime, built) })
  // No @fastify/jwt, @fastify/websocket or @fastify/cookie here: none of their decorators type-checks.
  // @ts-expect-error no app.jwt
  void app.jwt
  // @ts-expect-error no app.injectWS
  void app.injectWS
  app.get('/me', async (request) => {
    // @ts-expect-error no request.jwtVerify
    await request.jwtVerify()
    // @ts-expect-error no request.user
    void request.user
    // @ts-expect-error no request.ws
    void request.ws
    // @ts-expect-error no request.cookies
    void request.cookies
    const upgrade: { accountability: unknown } | null | undefined = request.realtime
    return { realtime: upgrade?.accountability ?? null }
  })
  const signed: string = app.realtime.jwt.sign({ sub: 'u1' }, { expiresIn: '1m' })
${graphql
  ? `  await app.register(realtime, { ...options, graphql: { schema: buildSchema('type Query { hello: String }') } })
  // @ts-expect-error with graphql installed, a schema is its GraphQLSchema: SDL is none
  await app.register(realtime, { ...options, graphql: { schema: 'type Query { hello: String }' } })
`
  : ''}  await app.ready()
  const error: RealtimeError = new RealtimeError('FORBIDDEN', 'Not yours.')
  const code: number = CloseCode.Unauthorized
  const url: string = redactUrl('redis://user:hunter2@localhost:6379')
  app.log.info({ code: error.code, close: code, url, signed })
  return app.realtime
}
`
const strict = { strict: true, exactOptionalPropertyTypes: true, skipLibCheck: false, noEmit: true, target: 'ES2022', types: ['node'] }
const projects = {
  'node16, ESM': { dir: 'esm', type: 'module', options: { module: 'Node16', moduleResolution: 'Node16' } },
  'node16, CommonJS': { dir: 'cjs', type: 'commonjs', options: { module: 'Node16', moduleResolution: 'Node16' } },
  bundler: { dir: 'bundler', type: 'module', options: { module: 'ESNext', moduleResolution: 'Bundler' } },
  node10: { dir: 'node10', type: 'commonjs', options: { module: 'CommonJS', moduleResolution: 'Node10', esModuleInterop: true } }
}
for (const { dir, type, options } of Object.values(projects)) {
  for (const [project, graphql] of [[dir, true], [`${dir}-no-graphql`, false]] as const) {
    write(join(consumer, project, 'package.json'), JSON.stringify({ type }))
    write(join(consumer, project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...strict, ...options }, files: ['usage.ts'] }))
    write(join(consumer, project, 'usage.ts'), usageOf(graphql))
  }
}
// An app that registers @fastify/jwt itself, with its FastifyJWT augmented: its decorators and `request.user` come
// from its own import, and its options and instance fit the plugin's (written-out) types for them.
write(join(consumer, 'jwt', 'package.json'), JSON.stringify({ type: 'module' }))
write(join(consumer, 'jwt', 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...strict, ...projects['node16, ESM'].options }, files: ['usage.ts'] }))
write(join(consumer, 'jwt', 'usage.ts'), `import Fastify from 'fastify'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import realtime, { type JwtInstance, type RealtimeOptions } from 'fastify-realtime'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string, role: 'admin' | 'user' }
    user: { id: string, admin: boolean }
  }
}

export async function start (): Promise<string> {
  const app = Fastify()
  await app.register(fastifyJwt, {
    secret: 'an-app-secret-of-32-characters-at-least-xx',
    formatUser: (payload) => ({ id: payload.sub, admin: payload.role === 'admin' }),
    trusted: (request, claims) => app.realtime.trusted(request, claims)
  })
  const jwt: Omit<FastifyJWTOptions, 'secret'> = { sign: { expiresIn: '15m' }, verify: { maxAge: '1h' } }
  const options: RealtimeOptions = {
    jwt,
    rest: {
      handlers: {
        whoami (message, connection) {
          const user: { id: string, admin: boolean } = connection.request.user
          connection.send({ type: 'whoami', uid: message.uid, user })
        }
      }
    }
  }
  await app.register(realtime, options)
  app.get('/me', { onRequest: [async (request) => { await request.jwtVerify() }] }, async (request) => ({ id: request.user.id, upgrade: request.realtime?.accountability }))
  const instance: JwtInstance = app.jwt
  const signed: string = app.realtime.jwt.sign({ sub: 'u1', role: 'user' })
  const verified: { sub: string } = app.realtime.jwt.verify<{ sub: string }>(signed)
  const viaApp: string = app.jwt.sign({ sub: 'u1', role: 'admin' })
  return [signed, verified.sub, viaApp, instance.lookupToken.name].join()
}
`)

t.test('the app\'s ioredis is 6, the plugin\'s own 5, under it', async t => {
  const version = (dir: string) => (JSON.parse(readFileSync(join(dir, 'node_modules', 'ioredis', 'package.json'), 'utf8')) as { version: string }).version
  t.match(version(consumer), /^6\./)
  t.match(version(packageDir), /^5\./)
})

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const withGraphql: Promise<Ran>[] = []
for (const [name, { dir }] of [...Object.entries(projects), ['node16, ESM, an app with @fastify/jwt of its own', { dir: 'jwt' }] as const]) {
  const checked = queued(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')])
  withGraphql.push(checked)
  t.test(`types: moduleResolution ${name}, strict, skipLibCheck false`, async t => {
    const ran = await checked
    t.equal(ran.stdout + ran.stderr, '', 'no error')
    t.equal(ran.code, 0)
  })
}

// graphql is an optional peer dependency. npm installs it all the same, where the package sees it (it is a dependency
// of @escape.tech/graphql-armor-*), but a layout that keeps it out of the package's sight (pnpm without hoisting,
// Yarn PnP) must type-check too: once everything above is done with it, the consumer's graphql is hidden, and the
// projects are checked again without it. (The declarations imported GraphQLSchema from it: TS2307.)
const withoutGraphql = Promise.allSettled([esmRun, cjsRun, ...withGraphql]).then(async () => {
  const graphql = join(consumer, 'node_modules', 'graphql')
  renameSync(graphql, `${graphql}.hidden`)
  try {
    let seen: string | null = null
    try {
      seen = createRequire(join(packageDir, 'package.json')).resolve('graphql')
    } catch {}
    const ran = await Promise.all(Object.values(projects).map(({ dir }) =>
      queued(process.execPath, [tsc, '-p', join(`${dir}-no-graphql`, 'tsconfig.json')])))
    return { seen, ran }
  } finally {
    renameSync(`${graphql}.hidden`, graphql)
  }
})
for (const [index, name] of Object.keys(projects).entries()) {
  t.test(`types without graphql installed: moduleResolution ${name}, strict, skipLibCheck false`, async t => {
    const { seen, ran } = await withoutGraphql
    // A node_modules/graphql above the consumer (in the temporary directory's parents) would hide the case.
    t.equal(seen, null, seen ? `graphql is still found, at ${seen}: set TMPDIR to a directory without one above it` : 'graphql is not found')
    t.equal(ran[index]!.stdout + ran[index]!.stderr, '', 'no error')
    t.equal(ran[index]!.code, 0)
  })
}

// Installed without hoisting (npm's nested strategy; pnpm's default is alike), the package finds only what it depends
// on: ws, which it imports, was a devDependency (ERR_MODULE_NOT_FOUND). On graphql 17 (or 16 before 16.10),
// graphql-armor's depth and alias rules get a graphql 16 of their own, and their refusals were that copy's errors, which
// graphql-ws took for a broken hook: the socket closed with 4500 instead of an `error` for the operation. The client's
// ws is the repository's: one of the consumer's own would be found by the package and hide a missing ws.
write(join(nested, 'graphql.mjs'), `import Fastify from 'fastify'
import realtime from 'fastify-realtime'
import { buildSchema, version } from 'graphql'
import WebSocket from '${import.meta.resolve('ws')}'

// What the plugin warns of: none, a ws release that changed what the plugin reaches into among them.
const warnings = []
const app = Fastify({ logger: { level: 'warn', stream: { write: line => warnings.push(JSON.parse(line).msg) } } })
await app.register(realtime, {
  secret: 'a-packaging-test-secret-of-32-chars!',
  graphql: { auth: 'public', schema: buildSchema('type Query { node: Node } type Node { id: ID, node: Node }') }
})
await app.listen({ host: '127.0.0.1', port: 0 })
const socket = new WebSocket(\`ws://127.0.0.1:\${app.server.address().port}/graphql\`, 'graphql-transport-ws')
const frames = []
const subscribe = (id, query) => socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query } }))
const ended = id => frames.some(frame => frame.id === id && (frame.type === 'error' || frame.type === 'complete'))
socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })))
socket.on('message', data => {
  const frame = JSON.parse(data)
  frames.push(frame)
  if (frame.type === 'connection_ack') {
    subscribe('deep', '{ node { node { node { node { node { node { node { node { node { node { id } } } } } } } } } } }')
    subscribe('aliased', \`{ \${Array.from({ length: 16 }, (_, i) => \`a\${i}: node { id }\`).join(' ')} }\`)
  } else if (frame.id !== 'after' && ended(frame.id) && ended('deep') && ended('aliased')) {
    // Both answered: one more operation on the same socket.
    subscribe('after', '{ node { id } }')
  } else if (frame.id === 'after' && ended('after')) {
    socket.close()
  }
})
const closed = await new Promise(resolve => socket.on('close', code => resolve(code)))
await app.close()
console.log(JSON.stringify({ graphql: version, frames, closed, warnings }))
`)
const nestedRun = nestedInstall.then(ran => ran.code === 0 ? queued(process.execPath, ['graphql.mjs'], nested) : ran)

t.test('installed without hoisting (npm --install-strategy=nested), on graphql 17: imports, registers and serves', async t => {
  const ran = await nestedRun
  if (!t.equal(ran.code, 0, ran.code === 0 ? 'installs and runs' : `fails:\n${ran.stderr}${ran.stdout}`)) return
  const { graphql, frames, warnings } = JSON.parse(ran.stdout) as { graphql: string, frames: unknown[], warnings: string[] }
  t.match(graphql, /^17\./, `graphql ${graphql}`)
  t.same(frames[0], { type: 'connection_ack' }, 'serves /graphql')
  // The ws npm resolved for the package now, whose receivers the plugin reaches into (paced reads, fragment copies).
  t.same(warnings, [], 'no warning: not of the ws installed with it either')
})

t.test('on graphql 17, a too deep or too aliased document gets an error for its operation, and the socket stays open', async t => {
  const ran = await nestedRun
  if (ran.code !== 0) return t.fail('did not run (see above)')
  const { frames, closed } = JSON.parse(ran.stdout) as { frames: { id?: string }[], closed: number }
  const of = (id: string) => frames.filter(frame => frame.id === id)
  t.same(of('deep'), [{ id: 'deep', type: 'error', payload: [{ message: 'Syntax Error: Query depth limit of 10 exceeded, found 11.' }] }])
  t.same(of('aliased'), [{ id: 'aliased', type: 'error', payload: [{ message: 'Syntax Error: Aliases limit of 15 exceeded, found 16.' }] }])
  t.same(of('after'), [{ id: 'after', type: 'next', payload: { data: { node: null } } }, { id: 'after', type: 'complete' }], 'then answers another')
  t.equal(closed, 1005, 'closed by the client')
})

// The README's first app (Install and register) as a newcomer pastes it into the consumer, run with a secret, then its
// login and its hello client, checked against the output the README prints under them. Only the port is changed.
t.test("the README's app.mjs and its hello client print what the README says", async t => {
  const blocks = blocksOf(readFileSync(join(root, 'README.md'), 'utf8'))
  const appBlock = blocks.find(block => block.lang === 'js' && block.code.includes('await app.listen({ port: 3000 })'))
  const clientBlock = blocks.find(block => block.lang === 'sh' && block.code.includes('ws://127.0.0.1:3000/websocket'))
  if (!appBlock || !clientBlock) return t.fail("the README's app.mjs, or its hello client, is gone")
  const port = await new Promise<number>(resolve => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
  const atPort = (code: string) => code.replaceAll('3000', String(port))
  write(join(consumer, 'app.mjs'), atPort(appBlock.code))
  const child = spawn(process.execPath, ['app.mjs'], { cwd: consumer, env: { ...process.env, SECRET: 'a-packaging-test-secret-of-32-chars!' } })
  t.teardown(() => { child.kill('SIGKILL') })
  let logged = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      logged += chunk.toString()
      if (logged.includes('Server listening')) resolve()
    })
    child.on('exit', code => reject(new Error(`app.mjs exited (${code}): ${logged}`)))
  })

  // The login, as its curl sends it; what it answers, as the README writes it ("..." for what differs).
  const [curl, client] = clientBlock.code.split('\n\n')
  const body = /-d '([^']+)'/.exec(curl!)![1]!
  const printed = (block: string) => block.split('\n').filter(line => line.startsWith('# ')).map(line => line.slice(2))
  const shaped = (line: string) => new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('\\.\\.\\.', '.+')}$`)
  const login = await (await fetch(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).text()
  t.match(login, shaped(printed(curl!)[0]!), 'the login answers as printed')

  // The hello client, run in the consumer, where ws came with the plugin.
  const script = /node -e '([\s\S]+?)' '<access_token>'/.exec(client!)![1]!
  const token = (JSON.parse(login) as { data: { access_token: string } }).data.access_token
  const ran = await run(process.execPath, ['-e', atPort(script), token], consumer)
  t.equal(ran.code, 0, `the client exits 0 ${ran.stderr}`)
  const lines = ran.stdout.trim().split('\n')
  const expected = printed(client!)
  t.equal(lines.length, expected.length, 'as many lines as printed')
  expected.forEach((line, i) => t.match(lines[i], shaped(line), `prints ${line}`))
})

// An app bundled with esbuild into one minified file, as the README's "Bundling" says (argon2, a native module, left
// out and installed beside it), run where nothing else is installed: the real SDK logs in and opens a socket, graphql-ws
// and the logs stream authenticate, a forged token is refused. A plugin file read from its own folder, or a ws receiver
// the plugin no longer reaches into once minified (its warning), fails it.
write(join(consumer, 'bundled-app.mjs'), `import Fastify from 'fastify'
import realtime from 'fastify-realtime'
import { buildSchema } from 'graphql'

const app = Fastify({ logger: { level: 'warn', stream: process.stderr } })
await app.register(realtime, {
  secret: 'a-packaging-test-secret-of-32-chars!',
  users: [{ email: 'ada@example.com', password: 'correct horse battery', admin: true }],
  authRoutes: true,
  logs: {},
  graphql: { schema: buildSchema('type Query { hello: String }') },
  rest: { handlers: { whoami (message, connection) { connection.send({ type: 'whoami', uid: message.uid, user: connection.accountability.user }) } } }
})
await app.listen({ host: '127.0.0.1', port: 0 })
console.log(JSON.stringify({ port: app.server.address().port }))
process.once('SIGTERM', () => { app.close().then(() => process.exit(0)) })
`)
const bundledDir = join(work, 'bundled')
const bundled = (async () => {
  const { build } = await import('esbuild')
  await build({
    entryPoints: [join(consumer, 'bundled-app.mjs')],
    outfile: join(bundledDir, 'app.mjs'),
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['argon2'],
    banner: { js: readmeBanner() },
    logLevel: 'silent'
  })
  // argon2 alone beside the bundle, as the README says: its own dependencies resolve from where it really is.
  mkdirSync(join(bundledDir, 'node_modules'), { recursive: true })
  symlinkSync(join(consumer, 'node_modules', 'argon2'), join(bundledDir, 'node_modules', 'argon2'), 'dir')
})()

/** The banner the README's esbuild command gives an ES module bundle: `require` for the CommonJS dependencies in it. */
function readmeBanner (): string {
  const command = readFileSync(join(root, 'README.md'), 'utf8').match(/^npx esbuild .*--banner:js="([^"]+)"/m)
  if (!command) throw new Error("the README's esbuild command is gone")
  return command[1]!
}

t.test('bundled with esbuild into one minified file, argon2 beside it: logins, sockets, GraphQL and logs work', async t => {
  await bundled
  const [{ authentication, createDirectus, realtime: realtimeClient }, { createClient }, { default: WebSocket }, { NodeWebSocket }] =
    await Promise.all([import('@directus/sdk'), import('graphql-ws'), import('ws'), import('../node-websocket.js')])
  const child = spawn(process.execPath, ['app.mjs'], { cwd: bundledDir, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  const started = await Promise.race([
    new Promise<string>(resolve => child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.includes('\n')) resolve(stdout)
    })),
    // The end of what it wrote: Node quotes the minified line before the error.
    exited.then(code => { throw new Error(`the bundle exited (${code}): ${stderr.slice(-1000)}`) })
  ])
  const { port } = JSON.parse(started) as { port: number }
  const http = `http://127.0.0.1:${port}`
  const ws = `ws://127.0.0.1:${port}`

  // The SDK: its login over POST /auth/login, then a socket authenticated with the access token.
  const client = createDirectus(http, { globals: { WebSocket: NodeWebSocket } })
    .with(authentication('json'))
    .with(realtimeClient({ authMode: 'handshake', reconnect: false }))
  await client.login('ada@example.com', 'correct horse battery')
  const accessToken = (await client.getToken())!
  await client.connect()
  const whoami = new Promise<{ type: string, uid: string, user: unknown }>(resolve => {
    client.onWebSocket('message', (frame: { type: string, uid: string, user: unknown }) => { if (frame.type === 'whoami') resolve(frame) })
  })
  client.sendMessage({ type: 'whoami', uid: 'me' })
  t.match(await whoami, { type: 'whoami', uid: 'me', user: /^[0-9a-f-]{36}$/ }, 'the SDK logs in and its socket is the user')
  client.stopRefreshing()
  client.disconnect()

  // graphql-ws, the token in connection_init.
  const graphql = createClient({ url: `${ws}/graphql`, webSocketImpl: WebSocket, connectionParams: { access_token: accessToken }, retryAttempts: 0 })
  const result = await new Promise((resolve, reject) => {
    let last: unknown
    graphql.subscribe({ query: '{ hello }' }, { next: value => { last = value }, error: reject, complete: () => resolve(last) })
  })
  t.same(result, { data: { hello: null } }, 'graphql-ws authenticates and queries')
  await graphql.dispose()

  // The logs stream (an admin), and a forged token refused with its close code.
  const opened = async (path: string, auth: object) => {
    const socket = new WebSocket(`${ws}${path}`)
    const seen: unknown[] = []
    const closed = new Promise<number>(resolve => socket.once('close', resolve))
    const first = new Promise(resolve => socket.on('message', data => { seen.push(JSON.parse(data.toString())); resolve(seen[0]) }))
    await new Promise(resolve => socket.once('open', resolve))
    socket.send(JSON.stringify(auth))
    return { socket, seen, first, closed }
  }
  const logs = await opened('/websocket/logs', { type: 'auth', access_token: accessToken })
  t.same(await logs.first, { type: 'auth', status: 'ok' }, 'the logs stream takes the admin')
  logs.socket.close()
  await logs.closed
  const forged = await opened('/websocket', { type: 'auth', access_token: `${accessToken.slice(0, accessToken.lastIndexOf('.'))}.${'A'.repeat(43)}` })
  t.equal(await forged.closed, 4401, 'a forged token refused, 4401')
  t.match(forged.seen, [{ type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' } }], 'told AUTH_FAILED first')

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'closes on SIGTERM')
  t.equal(stderr, '', 'no warning or error logged (ws reached into as when not bundled)')
})

// The README's TypeScript blocks, as a user pastes them into an app beside the installed package, checked as the README
// says a project may be set (nodenext, strict, exactOptionalPropertyTypes, skipLibCheck false, and "DOM" for the
// SDK's types). A block that no longer compiles against the package (an option renamed, a type changed, a name the
// block forgot to declare) fails here. Blocks importing a package the consumer does not install are left out: the
// list is checked, so that a new one is seen.
const readmeChecked = readmeInstall.then(async ran => {
  if (ran.code !== 0) return { ran, missing: [] as string[], files: {} }
  const declarations = ['dist/lib/index.d.ts', 'dist/types/index.d.ts'].map(file => readFileSync(join(packageDir, file), 'utf8')).join('\n')
  const exported = new Set([
    ...[...declarations.matchAll(/^export (?:declare )?(?:interface|type|const|function|class|enum) (\w+)/gm)].map(match => match[1]!),
    ...[...declarations.matchAll(/^export (?:type )?\{([^}]+)\}/gm)].flatMap(match => match[1]!.split(','))
      .map(name => name.trim().replace(/^type /, '').split(/\s+as\s+/).at(-1)!)
  ])
  exported.delete('default')
  const { files, missing } = typeScriptFiles(readFileSync(join(root, 'README.md'), 'utf8'), [...exported].sort(),
    name => existsSync(join(readme, 'node_modules', name, 'package.json')))
  for (const [file, code] of Object.entries(files)) write(join(readme, 'blocks', file), code)
  write(join(readme, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { ...strict, module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'] },
    include: ['blocks/*.ts']
  }))
  return { ran: await queued(process.execPath, [tsc, '-p', join(readme, 'tsconfig.json')], readme), missing, files }
})

t.test("the README's TypeScript blocks type-check against the installed package", async t => {
  const { ran, missing } = await readmeChecked
  t.equal(ran.stdout + ran.stderr, '', 'no error')
  t.equal(ran.code, 0)
  t.same(missing, ['connect-redis', 'redis'], 'the blocks left out import only these')
})

// The README's test (Testing your app) run as a user runs it, its types stripped: it checks the socket's answer and
// ends by itself. Without the heartbeat, which drops a forgotten socket a minute later, a block that leaves its app
// open never ends, and this test times out.
t.test("the README's test of an app runs, passes and ends", async t => {
  const { files } = await readmeChecked
  const block = Object.values(files).find(code => code.includes('injectWS('))
  if (block === undefined) return t.fail('the block of Testing your app is gone')
  const { transform } = await import('esbuild')
  write(join(readme, 'app.test.mjs'), (await transform(block, { loader: 'ts', format: 'esm' })).code)
  const ran = await new Promise<Ran>(resolve => {
    const child = execFile(process.execPath, ['app.test.mjs'], { cwd: readme, env: { ...process.env, WEBSOCKETS_HEARTBEAT_ENABLED: 'false' } },
      (error, stdout, stderr) => { resolve({ code: error ? 1 : 0, stdout, stderr }) })
    t.teardown(() => { child.kill('SIGKILL') })   // a block that never ends outlives the timeout otherwise
  })
  t.same(ran, { code: 0, stdout: '', stderr: '' })
})
