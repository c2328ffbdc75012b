// The access-token check: the short path for the plugin's own HS256 tokens never accepts what @fastify/jwt
// (fast-jwt) refuses, accepts what it accepts with the same claims, and leaves every refusal's code to it.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { createHmac } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { HmacSha256 } from '../lib/auth/hmac-sha256.js'
import { accessTokenVerifier, verifyStandardHs256 } from '../lib/auth/access-token-verifier.js'
import { build, connect, secret } from './helpers.js'

const seed = process.env.FUZZ_SEED === undefined ? 20_250_605 : Number(process.env.FUZZ_SEED)
const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url')
const header = b64('{"alg":"HS256","typ":"JWT"}')
const sign = (input: string, key: string | Buffer = secret) => createHmac('sha256', key).update(input).digest('base64url')
const token = (payload: string, key?: string | Buffer, head = header) => `${head}.${b64(payload)}.${sign(`${head}.${b64(payload)}`, key)}`
const now = () => Math.floor(Date.now() / 1000)

async function jwtApp (t: Test): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret })
  await app.ready()
  return app
}

/** fast-jwt's answer: the claims, or its error code. */
function authority (app: FastifyInstance, candidate: string): { claims: unknown } | { code: string } {
  try {
    return { claims: app.jwt.verify(candidate) }
  } catch (err) {
    return { code: (err as { code: string }).code }
  }
}

t.test('HMAC-SHA256 is createHmac\'s, for keys of any length and messages longer than its scratch space', async t => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 0, maxLength: 200 }),
    fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.'), maxLength: 1500 }),
    (key, message) => {
      const mac = new HmacSha256(Buffer.from(key))
      // Twice: the scratch space of the first call must not leak into the second.
      return mac.digest(message) === sign(message, Buffer.from(key)) && mac.digest('x') === sign('x', Buffer.from(key))
    }
  ), { seed, numRuns: 300 })
  // Around the block size: keys longer than 64 bytes are hashed first.
  for (const length of [0, 63, 64, 65, 200]) {
    const key = Buffer.alloc(length, 0xa5)
    t.equal(new HmacSha256(key).digest('header.payload'), sign('header.payload', key), `a ${length}-byte key`)
  }
})

t.test('the short path accepts the plugin\'s tokens with fast-jwt\'s claims, and nothing fast-jwt refuses', async t => {
  const app = await jwtApp(t)
  const mac = new HmacSha256(Buffer.from(secret))
  const claimValue = fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }))
  const date = fc.oneof({ arbitrary: fc.integer({ min: -3600, max: 3600 }).map(offset => now() + offset), weight: 4 }, claimValue)
  const payload = fc.oneof(
    { arbitrary: fc.record({ id: fc.string(), exp: date, nbf: date, role: claimValue }, { requiredKeys: ['id'] }).map(p => JSON.stringify(p)), weight: 4 },
    fc.jsonValue().map(value => JSON.stringify(value)),
    fc.string()
  )
  // Mangling a good token: a character changed, added, removed, or a base64 spelling instead of base64url.
  const mangle = fc.oneof(
    { arbitrary: fc.constant((s: string) => s), weight: 6 },
    fc.tuple(fc.nat(), fc.constantFrom(...'aZ09-_+/=. \n')).map(([at, c]) => (s: string) => s.slice(0, at % s.length) + c + s.slice(at % s.length + 1)),
    fc.tuple(fc.nat(), fc.constantFrom(...'aZ09-_+/=. ')).map(([at, c]) => (s: string) => s.slice(0, at % s.length) + c + s.slice(at % s.length)),
    fc.nat().map(at => (s: string) => s.slice(0, at % s.length) + s.slice(at % s.length + 1)),
    fc.constant((s: string) => s.replace(/-/g, '+').replace(/_/g, '/'))
  )
  const key = fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, fc.constant('another secret'))
  const head = fc.oneof({ arbitrary: fc.constant(header), weight: 4 }, fc.constantFrom(b64('{"alg":"HS512","typ":"JWT"}'), b64('{"typ":"JWT","alg":"HS256"}'), b64('{"alg":"none"}')))
  let accepted = 0
  fc.assert(fc.property(payload, key, head, mangle, (body, k, h, change) => {
    const candidate = change(token(body, k, h))
    const short = verifyStandardHs256(candidate, mac)
    if (short === null) return true
    accepted++
    const answer = authority(app, candidate)
    return 'claims' in answer && JSON.stringify(answer.claims) === JSON.stringify(short)
  }), { seed, numRuns: 3000 })
  t.ok(accepted > 200, `the short path took ${accepted} of the tokens`)
})

t.test('every token fast-jwt accepts from the plugin\'s signer, the short path accepts too', async t => {
  const app = await jwtApp(t)
  const mac = new HmacSha256(Buffer.from(secret))
  for (const claims of [{ id: 'u' }, { id: 'u', role: 'r', sid: 's' }, { sub: 'ü', nbf: now() - 1 }]) {
    const signed = app.jwt.sign(claims, { expiresIn: '60000' })
    t.same(verifyStandardHs256(signed, mac), app.jwt.verify(signed))
  }
  t.equal(verifyStandardHs256(token(JSON.stringify({ id: 'u', exp: now() - 1 })), mac), null, 'expired: for fast-jwt to say')
})

t.test('refusals keep @fastify/jwt\'s codes; without the plugin\'s own secret every token goes to @fastify/jwt', async t => {
  const app = await jwtApp(t)
  const verify = accessTokenVerifier(app.jwt, secret)
  const expired = token(JSON.stringify({ id: 'u', exp: now() - 10 }))
  t.throws(() => verify(expired), { code: 'FAST_JWT_EXPIRED' })
  t.throws(() => verify('not-a-token'), { code: 'FAST_JWT_MALFORMED' })
  t.throws(() => verify(token(JSON.stringify({ id: 'u' }), 'another secret')), { code: 'FAST_JWT_INVALID_SIGNATURE' })
  t.same(verify(token(JSON.stringify({ id: 'u' }))), { id: 'u' })

  const strict = Fastify()
  t.teardown(() => strict.close())
  await strict.register(fastifyJwt, { secret, verify: { allowedIss: 'directus' } })
  await strict.ready()
  const delegated = accessTokenVerifier(strict.jwt, null)
  t.throws(() => delegated(token(JSON.stringify({ id: 'u', iss: 'elsewhere' }))), { code: 'FAST_JWT_INVALID_CLAIM_VALUE' })
})

t.test('verify options given to the plugin\'s @fastify/jwt hold on the sockets', async t => {
  const { app, url } = await build(t, { jwt: { verify: { allowedIss: 'directus' } }, heartbeat: { enabled: false } })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token(JSON.stringify({ id: 'u', iss: 'elsewhere', exp: now() + 60 })) })
  t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' } })
  const issued = await connect(url('/websocket'))
  issued.send({ type: 'auth', access_token: app.jwt.sign({ id: 'u', iss: 'directus' }) })
  t.same(await issued.next(), { type: 'auth', status: 'ok' })
  await issued.close()
})

t.test('a SECRET longer than a block and not ASCII: the short path and fast-jwt agree', async t => {
  const long = 'ключ-'.repeat(20)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret: long })
  await app.ready()
  const verify = accessTokenVerifier(app.jwt, long)
  const signed = app.jwt.sign({ id: 'u' })
  t.same(verify(signed), app.jwt.verify(signed))
  t.same(verifyStandardHs256(signed, new HmacSha256(Buffer.from(long))), app.jwt.verify(signed), 'by the short path')
  t.same(new HmacSha256(Buffer.from(long)).digest('x'.repeat(5000)), sign('x'.repeat(5000), long), 'a message past the scratch space')
})
