// Which @fastify/jwt signs and verifies the realtime tokens: the app's own (root or namespaced), or one the plugin
// registers with SECRET. Either way every token goes through @fastify/jwt, in whatever configuration the app gave it.
import fastifyJwt, { type JWT } from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidConfigError } from '../errors.js'
import type { RealtimeOptions } from '../../types/index.js'

/** Verified claims, or a throw (or rejection) with @fastify/jwt's or fast-jwt's error code. */
export type VerifyAccessToken = (token: string, request: FastifyRequest) => Claims | Promise<Claims>

export type Claims = Record<string, unknown>

export interface TokenJwt {
  /** Signs, and knows the app's token cookie. */
  jwt: JWT
  verify: VerifyAccessToken
  /** A token's claims, unverified, whatever the instance's `decode` options (`complete` for a key lookup by `kid`). */
  claimsOf: (token: string) => Claims
}

const payloadOnly = { complete: false }

function claimsReader (jwt: JWT): (token: string) => Claims {
  const complete = (jwt.options.decode as { complete?: boolean } | undefined)?.complete === true
  return complete ? (token) => jwt.decode<Claims>(token, payloadOnly)! : (token) => jwt.decode<Claims>(token)!
}

// HS256's key should be as long as its hash: 256 bits, 32 characters at the very least.
const minSecretLength = 32

type RequestVerify = (options: object, callback: (err: Error | null) => void) => void

/**
 * The app's instance, verified per request as its HTTP routes are: its async key lookup (JWKS), `trusted`, and
 * `formatUser` (the formatted user lands on the upgrade request) all apply. A static key answers in the same turn;
 * only a lookup that really waits makes it a promise.
 */
function requestVerifier (claimsOf: (token: string) => Claims, verifyName: string): VerifyAccessToken {
  return (token, request) => {
    let done: { err: Error | null } | undefined
    let settle: ((err: Error | null) => void) | undefined
    const verify = (request as unknown as Record<string, RequestVerify>)[verifyName]
    verify.call(request, { verify: { extractToken: () => token } }, (err) => {
      if (settle) settle(err)
      else done = { err }
    })
    // Verified already: its claims, whatever `formatUser` made of them for the request.
    const claims = () => claimsOf(token)
    if (done) {
      if (done.err) throw done.err
      return claims()
    }
    return new Promise((resolve, reject) => {
      settle = (err) => err ? reject(err) : resolve(claims())
    })
  }
}

/**
 * `config.secret`: SECRET or the `secret` option; `config.issuer`: the `iss` of the tokens it signs. `trusts`: the
 * revocation check, the `trusted` of the instance the plugin registers (the app plugs it into its own).
 */
export async function tokenJwt (fastify: FastifyInstance, options: RealtimeOptions,
  config: { secret?: string, issuer: string, production: boolean }, trusts: (claims: Claims) => boolean): Promise<TokenJwt> {
  const namespace = options.jwt?.namespace
  const registered = fastify.hasDecorator('jwt') ? fastify.jwt as JWT & Record<string, JWT | undefined> : undefined
  const apps = namespace === undefined ? registered : registered?.[namespace]
  if (apps && typeof apps.verify === 'function') {
    const verifyName = options.jwt?.jwtVerify ?? (namespace === undefined ? 'jwtVerify' : `${namespace}JwtVerify`)
    if (!fastify.hasRequestDecorator(verifyName)) {
      throw new InvalidConfigError(`the app's @fastify/jwt has no request.${verifyName}: set the option jwt.jwtVerify to the name it was registered with`)
    }
    const claimsOf = claimsReader(apps)
    return { jwt: apps, verify: requestVerifier(claimsOf, verifyName), claimsOf }
  }
  if (!config.secret) {
    const namespaces = registered ? Object.keys(registered) : []
    throw new InvalidConfigError(registered && namespace === undefined
      ? `the app's @fastify/jwt is registered with namespaces (${namespaces.join(', ')}): set the option jwt.namespace to the one that verifies socket tokens, or give SECRET (option secret)`
      : 'SECRET (option secret) is required to sign access tokens, unless the app registers @fastify/jwt itself, before fastify-realtime')
  }
  if (config.secret.length < minSecretLength) {
    const weak = `SECRET (option secret) is ${config.secret.length} characters: anyone who guesses it signs tokens as any user; use ${minSecretLength} random characters or more (openssl rand -base64 32)`
    if (config.production) throw new InvalidConfigError(weak)
    fastify.log.warn(`${weak}. With NODE_ENV=production this fails boot`)
  }
  // Its own key, its own issuer: what the app signs with `fastify.jwt` carries it, and a token signed with SECRET by
  // anything else is no realtime credential. Beside the app's namespaced instances it takes a namespace of its own.
  const own = namespace ?? (registered ? 'realtime' : undefined)
  const appTrusted = options.jwt?.trusted
  await fastify.register(fastifyJwt, {
    ...options.jwt,
    // The app's HTTP routes verifying with it refuse a revoked token as the sockets do, and pass the app's own check.
    trusted: (request, claims) => trusts(claims as Claims) && (appTrusted ? appTrusted(request, claims) : true),
    ...(own === undefined ? {} : { namespace: own }),
    secret: config.secret,
    sign: { iss: config.issuer, ...options.jwt?.sign },
    verify: { allowedIss: config.issuer, requiredClaims: ['iss'], ...options.jwt?.verify }
  })
  const jwt = own === undefined ? fastify.jwt : (fastify.jwt as unknown as Record<string, JWT>)[own]
  // A static key: verified in the same turn, with fast-jwt's cached verifier.
  return { jwt, verify: (token) => jwt.verify<Claims>(token), claimsOf: claimsReader(jwt) }
}
