// Which @fastify/jwt signs and verifies the realtime tokens: the app's own (root or namespaced), or one the plugin
// registers with SECRET, out of the app's sight. Either way every token goes through @fastify/jwt.
import { createHash, randomBytes } from 'node:crypto'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import { parse as parseSpan } from '@lukeed/ms'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidConfigError } from '../errors.js'
import { isThenable } from '../thenable.js'
import type { JwtInstance, RealtimeOptions } from '../../types/index.js'

/** A verified token, or a throw (or rejection) with @fastify/jwt's or fast-jwt's error code. */
export type VerifyAccessToken = (token: string, request: FastifyRequest) => VerifiedToken | Promise<VerifiedToken>

export type Claims = Record<string, unknown>

export interface VerifiedToken {
  claims: Claims
  /**
   * What the app's instance made of it for `request.user` (its `formatUser`), written there once a socket takes it
   * (`RequestUsers.took`); undefined with the plugin's own instance.
   */
  requestUser?: unknown
}

export interface TokenJwt {
  /** Signs, and knows the app's token cookie. */
  jwt: JwtInstance
  verify: VerifyAccessToken
  /** A token's claims, unverified, whatever the instance's `decode` options (`complete` for a key lookup by `kid`). */
  claimsOf: (token: string) => Claims
  /** The app's instance writes what it made of a token on the request; the plugin's own writes nothing there. */
  requestUsers: RequestUsers | null
  /**
   * What verifies the tokens: registrations with one take each other's. The app's instance itself, or a digest of the
   * secret (of this process's own key, so that what holds it gives no way to guess the secret offline).
   */
  verifier: object | string
}

/**
 * `request.user` (the app's `decoratorName`) on a socket's upgrade request, kept to the socket's current credential:
 * the app's @fastify/jwt writes what it made of every token it verifies there as soon as it has, before the plugin
 * checks it (the revocations, the app's `onAuthenticate`, which may refuse it), and nothing clears it when the
 * credential ends.
 */
export class RequestUsers {
  readonly #field: string
  /** What the credential each socket holds made, by its request: null once it holds none. */
  readonly #held = new WeakMap<object, unknown>()

  constructor (field: string) {
    this.#field = field
  }

  /**
   * The app's instance verifies a token on `request`: the returned function undoes what it wrote there, putting back
   * what the socket holds by then (it may have taken another credential, or lost its own, while a key was looked up), or,
   * on a request no socket holds anything of yet, what it said before.
   */
  verifying (request: object): () => void {
    const fields = request as Record<string, unknown>
    const before = fields[this.#field]
    return () => { fields[this.#field] = this.#held.has(request) ? this.#held.get(request) : before }
  }

  /** The socket took a credential: what the app's instance made of its token, or nothing (a password, a refresh token). */
  took (request: object, requestUser: unknown): void {
    const user = requestUser ?? null
    this.#held.set(request, user)
    ;(request as Record<string, unknown>)[this.#field] = user
  }

  /** The socket holds no credential any more. */
  dropped (request: object): void {
    this.took(request, null)
  }
}

const payloadOnly = { complete: false }

/** Salts this process's digests of secrets, so that none can be looked up or guessed against elsewhere. */
const digestSalt = randomBytes(32)

function claimsReader (jwt: JwtInstance): (token: string) => Claims {
  const complete = (jwt.options.decode as { complete?: boolean } | undefined)?.complete === true
  return complete ? (token) => jwt.decode<Claims>(token, payloadOnly)! : (token) => jwt.decode<Claims>(token)!
}

/** How long a verified token keeps verifying, as the instance's verify options say, besides its `exp`. */
export interface VerifyWindow {
  /** `verify.maxAge`: fast-jwt refuses a token whose `iat` is older, whatever its `exp`; null without one. */
  maxAgeMs: number | null
  /** `verify.clockTolerance`: fast-jwt takes a token that long past its `exp` (0 without one). */
  clockToleranceMs: number
}

/**
 * The instance's window, read as @fastify/jwt reads its options: `maxAge` a number of seconds or a time span (in
 * milliseconds without a unit, by the same parser), `clockTolerance` milliseconds, as fast-jwt takes it.
 */
export function verifyWindow (jwt: JwtInstance): VerifyWindow {
  const maxAge: unknown = jwt.options.verify?.maxAge
  const clockTolerance: unknown = jwt.options.verify?.clockTolerance
  const ms = typeof maxAge === 'number' ? maxAge * 1000 : typeof maxAge === 'string' ? parseSpan(maxAge) : undefined
  return {
    // One @fastify/jwt cannot read either fails its registration (before 10.2.3 it was dropped: no maxAge).
    maxAgeMs: ms !== undefined && Number.isFinite(ms) ? ms : null,
    // fast-jwt refuses a negative or infinite one as it builds the verifier.
    clockToleranceMs: typeof clockTolerance === 'number' && clockTolerance > 0 ? clockTolerance : 0
  }
}

// HS256's key should be as long as its hash: 256 bits, 32 characters at the very least.
const minSecretLength = 32
// A long secret of a few characters repeated (a placeholder, 32 spaces) is guessed as soon as a short one.
const minDistinctCharacters = 8

/** What makes the secret guessable, or null. */
export function secretWeakness (secret: string): string | null {
  if (secret.trim() === '') return 'is blank'
  if (secret.length < minSecretLength) return `is ${secret.length} characters`
  if (new Set(secret).size < minDistinctCharacters) return `has fewer than ${minDistinctCharacters} distinct characters`
  const pattern = repeatedPattern(secret)
  return pattern !== null && pattern < minSecretLength ? `repeats its first ${pattern} characters` : null
}

/**
 * The length of the shortest beginning the secret is made of, repeated whole at least twice (`0123456789` in
 * `01234567890123456789012`), or null. Guessing it guesses the secret: it is as strong as a secret of that length.
 * Twice: a random secret that merely ends as it begins (1 in 64 of 32 base64 characters) repeats nothing.
 */
function repeatedPattern (secret: string): number | null {
  for (let length = 1; length <= secret.length / 2; length++) {
    if (secret.startsWith(secret.slice(length))) return length
  }
  return null
}

type RequestVerify = (options: object, callback: (err: Error | null, user?: unknown) => void) => void

/**
 * The app's instance, verified per request as its HTTP routes are: its async key lookup (JWKS), `trusted`, and
 * `formatUser` (the formatted user lands on the upgrade request once a socket takes the token) all apply. A static
 * key answers in the same turn; only a lookup that really waits makes it a promise.
 */
function requestVerifier (claimsOf: (token: string) => Claims, verifyName: string, users: RequestUsers, waitMs: number): VerifyAccessToken {
  return (token, request) => {
    let done: { err: Error | null, requestUser: unknown } | undefined
    let settle: ((err: Error | null, requestUser: unknown) => void) | undefined
    const verify = (request as unknown as Record<string, RequestVerify>)[verifyName]
    // A handler of the socket's reads its request meanwhile, and a token that turns out refused is nobody's: what
    // @fastify/jwt wrote is undone at once, and the guard writes it only as the socket takes the token.
    const undo = users.verifying(request)
    verify.call(request, { verify: { extractToken: () => token } }, (err, requestUser) => {
      undo()
      if (settle) settle(err, requestUser)
      else done = { err, requestUser }
    })
    // Verified already: its claims, whatever `formatUser` made of them for the request.
    const verified = (requestUser: unknown): VerifiedToken => ({ claims: claimsOf(token), requestUser })
    if (done) {
      if (done.err) throw done.err
      return verified(done.requestUser)
    }
    return new Promise((resolve, reject) => {
      const late = setTimeout(() => {
        // Given up on (its key lookup took too long): its verdict, should it come, is nobody's.
        settle = () => {}
        reject(new Error(`no answer within ${waitMs} ms`))
      }, waitMs)
      settle = (err, requestUser) => {
        clearTimeout(late)
        if (err) reject(err)
        else resolve(verified(requestUser))
      }
    })
  }
}

/**
 * Whether `jwt.sign` gives a token in the same turn: an instance whose key is a function (a JWKS lookup) or public
 * only cannot sign, or signs in a callback.
 */
function signsAtOnce (jwt: JwtInstance): boolean {
  try {
    const token: unknown = jwt.sign({ probe: true })
    if (isThenable(token)) token.then(undefined, () => {})
    return typeof token === 'string'
  } catch {
    return false
  }
}

// What fast-jwt says of a token whose claims its options refuse (an issuer, an audience, a claim required).
const claimRefusals = new Set(['FAST_JWT_INVALID_CLAIM_VALUE', 'FAST_JWT_INVALID_CLAIM_TYPE', 'FAST_JWT_MISSING_REQUIRED_CLAIM'])

/**
 * Why the app's instance refuses a token with the claims the plugin signs (authenticator.ts), as its verify options
 * have it; null when it takes it, or when it cannot say at once (a key function: its verdict comes with the first login).
 */
function refusedClaims (jwt: JwtInstance, issuer: string): string | null {
  const token = jwt.sign({ id: 'probe', role: null, admin_access: false, sid: 'probe' }, { expiresIn: '60000', iss: issuer, noTimestamp: false })
  try {
    const verified: unknown = jwt.verify(token)
    if (isThenable(verified)) verified.then(undefined, () => {})
    return null
  } catch (err) {
    const { code, message } = err as { code?: string, message: string }
    return code !== undefined && claimRefusals.has(code) ? message : null
  }
}

/** The plugin's own namespace among the app's: `realtime`, or the first of `realtime2`, `realtime3`... not taken. */
function freeNamespace (namespaces: Record<string, unknown>): string {
  let name = 'realtime'
  for (let n = 2; Object.hasOwn(namespaces, name); n++) name = `realtime${n}`
  return name
}

/**
 * `config.secret`: SECRET or the `secret` option; `config.issuer`: the `iss` of the tokens it signs. The instance the
 * plugin registers lives in a scope of its own: the app's instance, registered before the plugin or after it, keeps
 * `fastify.jwt`, `request.user` and `request.jwtVerify` to itself.
 * `waitMs`: how long a verification may wait for the app's key lookup before it is refused. `logins`: whether the
 * plugin signs tokens of its own (passwords are checked), which the app's instance must then do at once.
 */
export async function tokenJwt (fastify: FastifyInstance, options: RealtimeOptions,
  config: { secret?: string, issuer: string, production: boolean }, waitMs: number, logins: boolean): Promise<TokenJwt> {
  const namespace = options.jwt?.namespace
  const registered = fastify.hasDecorator('jwt') ? fastify.jwt as JwtInstance & Record<string, JwtInstance | undefined> : undefined
  const apps = namespace === undefined ? registered : registered?.[namespace]
  if (apps && typeof apps.verify === 'function') {
    const verifyName = options.jwt?.jwtVerify ?? (namespace === undefined ? 'jwtVerify' : `${namespace}JwtVerify`)
    if (!fastify.hasRequestDecorator(verifyName)) {
      throw new InvalidConfigError(`the app's @fastify/jwt has no request.${verifyName}: set the option jwt.jwtVerify to the name it was registered with`)
    }
    if (logins && !signsAtOnce(apps)) {
      throw new InvalidConfigError('the app\'s @fastify/jwt cannot sign a token at once (its key is a function, or public only), and the plugin signs the access tokens of its logins: give it a signing key (secret: { private, public }, where public may be a key function), or leave users and verifyCredentials out')
    }
    // No option of a sign call takes the app's `notBefore` off (fast-jwt counts `nbf` from it whenever it is set): a login's
    // token would be refused for that long.
    if (logins && apps.options.sign?.notBefore != null) {
      throw new InvalidConfigError('the app\'s @fastify/jwt signs with sign.notBefore, and the plugin signs its logins\' access tokens with it: each would be refused (AUTH_FAILED) for that long after its login. Give notBefore to your own sign calls (app.jwt.sign(payload, { notBefore })) rather than to the instance, or leave users and verifyCredentials out')
    }
    const refused = logins ? refusedClaims(apps, config.issuer) : null
    if (refused !== null) {
      throw new InvalidConfigError(`the app's @fastify/jwt refuses the access tokens the plugin signs with it (${refused}): every login would answer a token no socket takes. Set the option issuer (ACCESS_TOKEN_ISSUER) to an issuer it allows, or allow ${config.issuer} (verify.allowedIss), and require no claim the plugin does not sign (verify.requiredClaims)`)
    }
    // SECRET is no key of the app's instance: a token it signs for another purpose (a magic link, an invitation) would
    // open sockets all the same, whoever thought the plugin verified with SECRET.
    if (config.secret) fastify.log.warn('SECRET (option secret) is not used: the app\'s @fastify/jwt, registered before fastify-realtime, verifies socket tokens, and every token it accepts opens a socket as its user')
    const claimsOf = claimsReader(apps)
    const requestUsers = new RequestUsers((apps as unknown as { options: { decoratorName: string } }).options.decoratorName)
    return { jwt: apps, verify: requestVerifier(claimsOf, verifyName, requestUsers, waitMs), claimsOf, requestUsers, verifier: apps }
  }
  if (!config.secret) {
    const namespaces = registered ? Object.keys(registered) : []
    throw new InvalidConfigError(registered && namespace === undefined
      ? `the app's @fastify/jwt is registered with namespaces (${namespaces.join(', ')}): set the option jwt.namespace to the one that verifies socket tokens, or give SECRET (option secret)`
      : 'SECRET (option secret) is required to sign access tokens, unless the app registers @fastify/jwt itself, before fastify-realtime')
  }
  const weakness = secretWeakness(config.secret)
  if (weakness) {
    const weak = `SECRET (option secret) ${weakness}: anyone who guesses it signs tokens as any user; use ${minSecretLength} random characters or more (openssl rand -base64 32)`
    if (config.production) throw new InvalidConfigError(weak)
    fastify.log.warn(`${weak}. With NODE_ENV=production this fails boot`)
  }
  // Its own key, its own issuer: a token signed with SECRET by anything else is no realtime credential. Its request
  // decorators stay in its scope; beside the app's namespaced instances, whose `fastify.jwt` every scope shares, it
  // joins them as `realtime`, or, that name taken (another registration's, in a sibling scope), the first of
  // `realtime2`, `realtime3`... free: @fastify/jwt refuses a namespace used twice, and boot would fail.
  // The contract types them structurally (types/jwt.ts); they are @fastify/jwt's options all the same.
  const { namespace: _namespace, jwtVerify: _jwtVerify, ...own } = (options.jwt ?? {}) as Omit<FastifyJWTOptions, 'secret'>
  const ownNamespace = registered ? freeNamespace(registered) : undefined
  let jwt!: JwtInstance
  await fastify.register(async function realtimeJwt (scope) {
    await scope.register(fastifyJwt, {
      ...own,
      ...(ownNamespace ? { namespace: ownNamespace } : {}),
      secret: config.secret!,
      sign: { iss: config.issuer, ...own.sign },
      // `iss` stays required beside the claims the app's options require: fast-jwt lets a token without one past
      // `allowedIss`, and a `requiredClaims: ['exp']` of the app's would have let in one signed with SECRET elsewhere.
      verify: { allowedIss: config.issuer, ...own.verify, requiredClaims: [...new Set(['iss', ...own.verify?.requiredClaims ?? []])] }
    })
    jwt = ownNamespace ? registered![ownNamespace]! : scope.jwt
  })
  // The plugin's own instance verifies only what the plugin signs (logins, signAccessToken): options of the app's that
  // refuse those tokens would have every one of them refused at its first socket.
  if (own.sign?.notBefore != null) {
    throw new InvalidConfigError('the option jwt.sign.notBefore would make every access token the plugin signs refused (AUTH_FAILED) for that long after it is signed: leave it out')
  }
  const refused = refusedClaims(jwt, config.issuer)
  if (refused !== null) {
    throw new InvalidConfigError(`the option jwt.verify refuses the access tokens the plugin signs (${refused}): every login would answer a token no socket takes. Allow ${config.issuer} (the option issuer, ACCESS_TOKEN_ISSUER) in verify.allowedIss, or leave it out, and require no claim the plugin does not sign (verify.requiredClaims)`)
  }
  // Which registrations share revocations (one secret, one set): a salted digest names the secret; no token is checked
  // with it.
  const verifier = createHash('sha256').update(digestSalt).update(config.secret).digest('base64')
  // A static key: verified in the same turn, with fast-jwt's cached verifier.
  return { jwt, verify: (token) => ({ claims: jwt.verify<Claims>(token) }), claimsOf: claimsReader(jwt), requestUsers: null, verifier }
}
