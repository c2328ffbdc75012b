// The public contract of fastify-realtime: what users configure, what sockets carry, what the plugin decorates.
// lib/ imports its types from here, so the contract and the code cannot drift.
// Never @fastify/jwt's types: they would give every app that imports the plugin its decorators (types/jwt.ts).
import type { FastifyRequest, LogLevel, RegisterOptions } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import type { UserDirectory } from '../lib/auth/user-directory.js'
import type { JwtInstance, JwtOptions } from './jwt.js'

export type * from './jwt.js'

/** How a socket on an endpoint must authenticate (PROTOCOL.md section 4). */
export type AuthMode = 'public' | 'handshake' | 'strict'

/** The three endpoints, by their configuration prefix (`WEBSOCKETS_REST_`, `WEBSOCKETS_GRAPHQL_`, `WEBSOCKETS_LOGS_`). */
export type EndpointName = 'rest' | 'graphql' | 'logs'

/** Who is behind a socket. Every open socket always has one; the public one has `user: null`. */
export interface Accountability {
  user: string | null
  role: string | null
  admin: boolean
  ip: string | null
  userAgent: string | null
  origin: string | null
  /** The refresh session the credential belongs to, when it carries one (`sid` claim). */
  session?: string
}

/**
 * What a credential proves: the user part of an accountability. The plugin keeps the object it is given (from
 * `mapClaims`, `verifyCredentials`, a session) for as long as a socket holds it, and finds the socket by its `user`:
 * do not change it afterwards.
 */
export interface Identity {
  user: string
  role: string | null
  admin: boolean
}

/** Codes of the error frames and HTTP errors the plugin sends (PROTOCOL.md section 8). */
export type WireErrorCode =
  | 'AUTH_FAILED'
  | 'TOKEN_EXPIRED'
  | 'AUTH_REVOKED'
  | 'AUTH_TIMEOUT'
  | 'INVALID_PAYLOAD'
  | 'INVALID_CREDENTIALS'
  | 'REQUESTS_EXCEEDED'
  | 'FORBIDDEN'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR'

/**
 * The code of a `RealtimeError`: one of the plugin's, or the application's own (any string; the built-in ones keep
 * their autocompletion).
 */
export type RealtimeErrorCode = WireErrorCode | (string & {})

/** Units of an `ms` duration (`15m`, `7 days`, `1.5h`), as the `ms` package reads them (case-insensitive). */
type DurationUnit =
  | 'ms' | 'msec' | 'msecs' | 'millisecond' | 'milliseconds'
  | 's' | 'sec' | 'secs' | 'second' | 'seconds'
  | 'm' | 'min' | 'mins' | 'minute' | 'minutes'
  | 'h' | 'hr' | 'hrs' | 'hour' | 'hours'
  | 'd' | 'day' | 'days'
  | 'w' | 'week' | 'weeks'
  | 'y' | 'yr' | 'yrs' | 'year' | 'years'

/**
 * A duration: milliseconds, or an `ms` string such as `15m`, `7d`, `12 hours` (`ms`'s own `StringValue`, written out
 * here so the published types need no `@types/ms`). Checked again at registration: it must be positive.
 */
export type Duration =
  | number
  | `${number}`
  | `${number}${DurationUnit | Capitalize<DurationUnit> | Uppercase<DurationUnit>}`
  | `${number} ${DurationUnit | Capitalize<DurationUnit> | Uppercase<DurationUnit>}`

/** The three forms of credential an auth message (or an HTTP route) can carry. */
export type Credential =
  | { access_token: string }
  | { email: string, password: string, otp?: string }
  | { refresh_token: string }

export interface PasswordCredential {
  email: string
  password: string
  otp?: string
}

/** What the plugin tells a credential check about the login it is part of. */
export interface CredentialCheck {
  /**
   * Aborts when the login fails after a check that ended (or ran past its 3 s), for want of something other than the
   * credential (SERVICE_UNAVAILABLE: the session store away, the app's `onAuthenticate` failing, the client gone): a
   * one-time code the check used up can be given back, so that the client's retry with it works.
   */
  signal: AbortSignal
}

/**
 * Checks an email and password (and one-time password, when the user has one). The email comes normalised
 * (`normalizeEmail`: trimmed, NFKC, lowercased), as the attempt limits count it: look up exactly that string.
 * Resolves the identity, or null when the credentials are wrong. Throwing means the check itself failed
 * (the client gets SERVICE_UNAVAILABLE).
 */
export type VerifyCredentials = (credential: PasswordCredential, check: CredentialCheck) => Promise<Identity | null>

/** A user of the embedded directory (the default `verifyCredentials`). */
export interface DirectoryUser {
  /** The user id (default: derived from the email, the same in every process). */
  id?: string | undefined
  email: string
  password: string
  role?: string | null | undefined
  admin?: boolean | undefined
  /** Base32 TOTP secret of 16 characters or more (a 10-byte key): when set, logins must carry a valid `otp`. */
  otpSecret?: string | undefined
}

/**
 * The argon2id cost of the embedded directory's password hashes, paid once per user added and once per password
 * checked. The default is OWASP's baseline for argon2id: 19 MiB (`memoryCost: 19456`), 2 passes (`timeCost: 2`),
 * 1 lane. Lowering it is for tests, which add and check hundreds of passwords; in production keep it or raise it.
 */
export interface PasswordHashing {
  /** Memory per hash, in KiB (default 19456; at least 8). */
  memoryCost?: number | undefined
  /** Passes over that memory (default 2; at least 1). */
  timeCost?: number | undefined
}

/** Options of `new UserDirectory(options)`, a directory the app makes and hands to the plugin as `users`. */
export interface UserDirectoryOptions {
  /** The cost of its password hashes (default: OWASP's 19 MiB, 2 passes). */
  passwordHashing?: PasswordHashing | undefined
}

/** Maps verified access-token claims to an identity; null rejects the token. */
export type MapClaims = (claims: Record<string, unknown>) => Identity | null

/**
 * A refresh session as a store keeps it: one record, whatever the number of rotations. Tokens are never stored, only
 * the hash of the current one.
 */
export interface RefreshSession {
  id: string
  identity: Identity
  /** Hash of the one refresh token that may be used next. */
  tokenHash: string
  /** Epoch milliseconds after which the session is gone. */
  expiresAt: number
}

/** A refresh token as a store sees it: the session it names (every token carries its session's id) and its hash. */
export interface PresentedToken {
  sessionId: string
  tokenHash: string
}

/**
 * A session cookie's refresh grace (`cookies.session.refreshGrace`), which `rotate` keeps with the token it replaces:
 * for `ms` after the rotation, by the store's clock, that token is `previous`, not `reused`, while the session is still
 * at the token it was rotated to.
 */
export interface RotationGrace {
  ms: number
}

/** What `rotate` found for a presented refresh token. */
export type RotateResult =
  | { status: 'rotated', session: RefreshSession }
  /** The token the last rotation replaced, within its grace: nothing changed. */
  | { status: 'previous', session: RefreshSession }
  | { status: 'reused', sessionId: string }
  | { status: 'unknown' }

/** What `lookup` found for a presented refresh token. */
export type TokenLookup =
  | { status: 'current', session: RefreshSession }
  /** The token the last rotation replaced, within its grace (see `RotationGrace`). */
  | { status: 'previous', session: RefreshSession }
  | { status: 'reused', sessionId: string }
  | { status: 'unknown' }

/**
 * Where refresh sessions live: one record per session, its current token's hash, whatever the number of rotations.
 * A presented token is `current` when its hash is its session's, `previous` when it is the token a rotation with a
 * grace replaced and the grace lasts, `reused` when its session is live but the hash is another (a rotated token, or a
 * forged one: the caller ends the session), `unknown` when its session is gone or expired.
 *
 * Every method is atomic on its own: two concurrent `rotate` calls with the same token see exactly one `rotated`; the
 * other sees `reused`. Every write takes a `deadline` (epoch milliseconds, the caller's clock): by then the caller has
 * answered SERVICE_UNAVAILABLE, so a write that would start acting after it rejects instead and changes nothing.
 */
export interface SessionStore {
  /**
   * Optional, for a store that processes share: where the store stands as a login's password check begins, a number
   * it can order against `endUser` (one clock every process reads, a counter). The plugin asks it just before the
   * check and hands the answer back to `create` as `checkBegan`; a store without it leaves the guard to each process,
   * which refuses such a login only once it has heard of the revocation (see `create`), and so does a login whose
   * `checkBegins` rejects.
   */
  checkBegins? (): Promise<number>
  /**
   * Stores a new session. A store that keeps each user within a number of sessions (the plugin's own, with
   * `maxSessionsPerUser`) ends the user's oldest past it (never the session it stores, even one that expires first
   * since the refresh lifetime was lowered), and resolves their ids: the plugin revokes them.
   * `checkBegan` (what `checkBegins` answered for this login; undefined without it): a login whose check began before
   * an `endUser` of its user began may be listed after that `endUser` read the user's sessions, and would live on.
   * The store keeps no such session: it ends it at once and resolves its id with the others, and the login fails as
   * a wrong password does. A store may ignore it.
   */
  create (session: RefreshSession, deadline: number, checkBegan?: number): Promise<void | string[]>
  /**
   * Replaces the current token's hash with `nextTokenHash` and extends the session to `expiresAt`. A store whose client
   * may send a call again (its answer lost with its connection) answers the repeat, the session already at
   * `nextTokenHash`, `rotated` as the first time. With `grace` (a session cookie's refresh), the replaced token is
   * `previous` for `grace.ms` while the session stays at `nextTokenHash`, and `rotate` answers it `previous`, changing
   * nothing; without, the replaced token is `reused` at once. A store may ignore `grace` (and never
   * answer `previous`): two tabs refreshing one session cookie at once then end the session as reuse.
   */
  rotate (token: PresentedToken, nextTokenHash: string, expiresAt: number, deadline: number, grace?: RotationGrace): Promise<RotateResult>
  /**
   * Optional: takes back a rotation the plugin answered SERVICE_UNAVAILABLE for (its answer came late or not at all,
   * or its client left): a session still at `nextTokenHash` goes back to `token`'s hash, with no previous token; any
   * other stays as it is. Safe
   * whenever it lands, with no deadline: nobody ever held the token of `nextTokenHash`. Without it, such a rotation
   * stands, and the client's retry with the token it holds counts as reuse.
   */
  unrotate? (token: PresentedToken, nextTokenHash: string): Promise<void>
  /**
   * What a token is, without changing anything. Also asked with a hash no token has, whether a session still lives
   * (`reused`) or not (`unknown`): without Redis, for an access token signed before the process started.
   */
  lookup (token: PresentedToken): Promise<TokenLookup>
  /** Ends a session: none of its tokens works any more. Resolves the ended session's identity, or null. */
  end (sessionId: string, deadline: number): Promise<Identity | null>
  /** Ends every session of a user; resolves their ids. */
  endUser (user: string, deadline: number): Promise<string[]>
}

/** Per-endpoint options; each overrides the matching `WEBSOCKETS_X_*` variable. */
export interface EndpointOptions {
  /** Mount the endpoint (`WEBSOCKETS_X_ENABLED`, default true). */
  enabled?: boolean | undefined
  /** Route path (`WEBSOCKETS_X_PATH`). */
  path?: string | undefined
  /** Auth mode (`WEBSOCKETS_X_AUTH`, default `handshake`). */
  auth?: AuthMode | undefined
  /** Seconds to authenticate (`WEBSOCKETS_X_AUTH_TIMEOUT`, default 10). */
  authTimeout?: number | undefined
  /** Open connections per process on this endpoint (`WEBSOCKETS_X_CONN_LIMIT`, default unlimited). */
  connLimit?: number | undefined
}

/** A JSON message on `/websocket` that the plugin does not own itself. */
export interface RealtimeMessage {
  type: string
  uid?: string | number
  [key: string]: unknown
}

/** One open socket, as the application sees it. */
export interface RealtimeConnection {
  readonly id: string
  readonly endpoint: EndpointName
  /** Always present: the public accountability when nobody is authenticated. */
  readonly accountability: Accountability
  /** The upgrade request: its headers, cookies, session, `request.log`, and `request.user` from the app's @fastify/jwt. */
  readonly request: FastifyRequest
  /** What `onAuthenticate` returned for the socket's current credential; empty while nobody is authenticated. */
  readonly context: Readonly<Record<string, unknown>>
  /** The application's own state for this socket, from its open to its close. */
  readonly state: Record<string, unknown>
  /** Sends a JSON message (serialized once). */
  send (message: object): void
  /**
   * Closes the socket: with no code (the client reads 1005), or with a code a close frame carries (1000-1003,
   * 1007-1014, 3000-4999) and, optionally, a reason of at most 123 bytes of UTF-8. Any other close (a reason without a
   * code too) throws a TypeError, and the socket stays open.
   */
  close (code?: number, reason?: string): void
}

/**
 * What a message handler runs as, its third argument: the same object for every handler its socket calls under one
 * accountability.
 */
export interface MessageContext {
  /** The socket's accountability when the handler was called: `connection.accountability` follows the socket's. */
  readonly accountability: Accountability
  /**
   * Aborts when `accountability` ends on the socket: the socket closes (as its close is sent), its token expires
   * (TOKEN_EXPIRED), its session or user is revoked (AUTH_REVOKED), or an auth message leaves it another user, role,
   * admin flag or session (a refreshed token of the same session keeps it). Shared by every handler called under that
   * accountability, and by what they leave running: remove what you add to it. A handler that rejects with what the
   * aborted signal threw (its `reason`, an `AbortError`) is neither logged nor answered.
   */
  readonly signal: AbortSignal
  /** `connection.send`, until `signal` aborts: then nothing is sent. */
  send (message: object): void
}

/** Handles a JSON message the plugin does not own; throw a `RealtimeError` to answer with an error frame. */
export type MessageHandler =
  (message: RealtimeMessage, connection: RealtimeConnection, context: MessageContext) => void | Promise<void>

/**
 * A schema of a whole message (`type` and `uid` included), compiled by the app's validator compiler: a JSON schema for
 * Fastify's default Ajv, or whatever a custom `setValidatorCompiler` takes.
 */
export type MessageSchema = object

/**
 * A handler whose messages are validated first: one that does not match `schema` answers INVALID_PAYLOAD naming the
 * failing path, and the handler is not called. `M` types the message the schema guarantees:
 * `const chat: ValidatedMessageHandler<{ text: string }> = { schema, handler (message) { message.text } }`.
 */
export interface ValidatedMessageHandler<M extends object = RealtimeMessage> {
  schema: MessageSchema
  handler (message: M & RealtimeMessage, connection: RealtimeConnection, context: MessageContext): void | Promise<void>
}

/** Message types the plugin answers itself: no handler can take them. */
export type ReservedMessageType = 'auth' | 'ping' | 'pong'

/** Handlers of application messages, by `type`: a function, or a schema and a function. */
export type MessageHandlers =
  // Written out, not `ValidatedMessageHandler`: TypeScript would compare a `ValidatedMessageHandler<M>` with it by `M`
  // alone, and refuse every `M` without a `type`. Structurally (a method's parameters both ways) any `M` fits.
  & Record<string, MessageHandler | {
    schema: MessageSchema
    handler (message: RealtimeMessage, connection: RealtimeConnection, context: MessageContext): void | Promise<void>
  }>
  & { [T in ReservedMessageType]?: never }

/** Which sockets a `send`/`close` call reaches. */
export interface ConnectionFilter {
  /** null: the sockets with no user (public ones). */
  user?: string | null
  /** null: the sockets with no session. */
  session?: string | null
  endpoint?: EndpointName
}

export interface RestEndpointOptions extends EndpointOptions {
  /**
   * Handlers of application messages by `type` (any but `auth`, `ping` and `pong`, which the plugin owns): a function,
   * or `{ schema, handler }` to validate the messages first. A type without a handler answers INVALID_PAYLOAD.
   */
  handlers?: MessageHandlers | undefined
}

/**
 * The `contextValue` of every GraphQL operation: the socket's accountability when the operation started, plus what
 * the `context` option adds (which cannot replace the accountability).
 */
export interface GraphqlContext {
  accountability: Accountability
  /**
   * Aborted when the operation ends: a subscription's at the client's `complete`, every operation's at the socket's
   * close or its own end. Hand it to what a subscription waits on (`on(emitter, event, { signal })`): a source that
   * does not stop keeps its place among the socket's `operationLimit` until it does.
   */
  signal: AbortSignal
  [key: string]: unknown
}

// graphql is an optional peer dependency, and these declarations ship: where it is not installed, its import must not
// fail a consumer's type-check (TS2307 with skipLibCheck false), and GraphQLSchema is `any`; where it is, this is
// graphql's own GraphQLSchema. The directive is a JSDoc comment on a type alias: tsc keeps that one in
// dist/types/index.d.ts, where a `//` one, or any on an import, would be dropped (test/package/ checks both cases).
/** @ts-ignore graphql may not be installed */
type GraphQLSchema = import('graphql').GraphQLSchema

export interface GraphqlEndpointOptions extends EndpointOptions {
  /**
   * The schema operations run against, or a function of the accountability returning one (called for every
   * operation, so a role can see its own schema). Without a schema the endpoint is not mounted.
   */
  schema?: GraphQLSchema | ((accountability: Accountability) => GraphQLSchema | Promise<GraphQLSchema>) | undefined
  /** Adds fields to every operation's context, next to `accountability`. */
  context?: ((accountability: Accountability, connection: RealtimeConnection) => Record<string, unknown> | Promise<Record<string, unknown>>) | undefined
  /** Most tokens a query document may have (`GRAPHQL_QUERY_TOKEN_LIMIT`, default 5000); longer ones are not parsed. */
  queryTokenLimit?: number | undefined
  /**
   * Deepest nesting of fields in an operation (`GRAPHQL_QUERY_DEPTH_LIMIT`, default 10; fragments add none). A document
   * past it, or past the two limits below, is refused before graphql-js validates it: its operation gets an `error`.
   */
  queryDepthLimit?: number | undefined
  /** Most aliases in an operation (`GRAPHQL_QUERY_ALIAS_LIMIT`, default 15; 0 forbids them); `__typename` ones are free. */
  queryAliasLimit?: number | undefined
  /** Most fields and fragment spreads in a document, each counted where it is written (`GRAPHQL_QUERY_FIELD_LIMIT`, default 200). */
  queryFieldLimit?: number | undefined
  /**
   * Most operations in flight on one socket (`GRAPHQL_OPERATION_LIMIT`, default 100): queries until answered,
   * subscriptions until they end or the client completes them. The excess get an `error` message for their id.
   */
  operationLimit?: number | undefined
  /** Allow `__schema` and `__type` queries (`GRAPHQL_INTROSPECTION`, default true). */
  introspection?: boolean | undefined
}

/** Where a credential was presented: at the upgrade, in an auth message, in `connection_init`, or on an HTTP auth route. */
export type CredentialSource = 'upgrade' | 'auth' | 'connection_init' | 'login' | 'refresh'

/** What `onAuthenticate` is told of a credential the plugin verified. */
export interface AuthenticateEvent {
  identity: Identity
  /** The verified token's claims (an access or session token); null for email/password and refresh tokens. */
  claims: Record<string, unknown> | null
  /** The socket's upgrade request, or the HTTP auth route's request. */
  request: FastifyRequest
  source: CredentialSource
  /** The socket's endpoint; null on the HTTP auth routes. */
  endpoint: EndpointName | null
}

/**
 * The app's check at every authentication, after the credential is verified: false refuses it (AUTH_FAILED), an
 * object becomes the socket's `context` (and joins every GraphQL operation's context), anything else admits it.
 * A throw, or no answer within 3 s, is a check that could not run: SERVICE_UNAVAILABLE. A login's check runs before
 * its session is made: a login it refuses never reaches the session store, and so ends none of the user's sessions
 * past `maxSessionsPerUser`.
 */
export type OnAuthenticate = (event: AuthenticateEvent) =>
  boolean | void | Record<string, unknown> | Promise<boolean | void | Record<string, unknown>>

/** Limits on email/password attempts (PROTOCOL.md section 8). */
export interface AttemptLimitOptions {
  /** Failures allowed per client IP and per email inside one window (default 10); the next ones are refused. */
  points?: number | undefined
  /** Length of the window in whole seconds (default 60), from the first attempt it counts. */
  durationSeconds?: number | undefined
}

export interface AuthRoutesOptions {
  /** Prefix of the routes (default `/auth`): `POST {prefix}/login`, `/refresh`, `/logout`. */
  prefix?: string | undefined
}

/**
 * The app's own ioredis client, `Redis` or `Cluster`, of ioredis 5 or 6, as the `redis` option takes it. ioredis's
 * classes have private members, so each matches only its own declarations, never the app's of the other major (`npm i
 * ioredis` installs 6): what the plugin uses of one is matched instead, with ioredis 5's signatures where both majors
 * share them.
 */
export type IoredisClient = IoredisClientOf<Redis> | IoredisClientOf<Cluster>

type IoredisClientOf<Client extends Redis | Cluster> = Pick<Client, 'status' | 'isCluster' | 'publish' | 'eval' | 'defineCommand' | 'disconnect'> & NodeJS.EventEmitter & {
  /** Each major types it its own way (it returns its own class): only there. */
  duplicate: (...args: never[]) => unknown
  readonly options: { readonly keyPrefix?: string | undefined }
}

export interface RealtimeOptions {
  // Fastify's `register` options, typed as Fastify types them (no `| undefined`): `register` takes the options as
  // Fastify's and the plugin's at once, and under `exactOptionalPropertyTypes` the two must agree.
  /**
   * Where the plugin's routes are mounted (default none): `/api` serves `/api/websocket`, `/api/auth/login`... Fastify's
   * `register` option, which the plugin applies to its own routes only (it decorates the app it is registered on).
   */
  prefix?: string
  /** The log level of the plugin's routes (Fastify's `register` option): `warn` leaves out their request logs. */
  logLevel?: LogLevel
  /** Serializers of the plugin's routes' log lines (Fastify's `register` option). */
  logSerializers?: NonNullable<RegisterOptions['logSerializers']>
  /**
   * Environment to read `WEBSOCKETS_*` and friends from (default `process.env`). `NODE_ENV` is read from
   * `process.env` when this leaves it out.
   */
  env?: Record<string, string | undefined> | undefined
  /** Signs and verifies access tokens when the app has not registered `@fastify/jwt` itself (`SECRET`). */
  secret?: string | undefined
  /**
   * Further `@fastify/jwt` options for the instance the plugin registers. When the app registered its own, only
   * `namespace` (and `jwtVerify`, when the app renamed it) are read: which of its instances verifies socket tokens.
   */
  jwt?: JwtOptions | undefined
  /** Runs at every authentication, after the credential is verified: see `OnAuthenticate`. */
  onAuthenticate?: OnAuthenticate | undefined
  /** The JSON endpoint, or false to leave it out. */
  rest?: RestEndpointOptions | false | undefined
  /** The logs endpoint (`/websocket/logs`): the app's log lines streamed to admins, or false to leave it out. */
  logs?: EndpointOptions | false | undefined
  /** The GraphQL endpoint (mounted only with a `schema`), or false to leave it out. */
  graphql?: GraphqlEndpointOptions | false | undefined
  /**
   * Heartbeat (`WEBSOCKETS_HEARTBEAT_ENABLED`, `WEBSOCKETS_HEARTBEAT_PERIOD` in seconds): every socket past its
   * handshake is pinged each period (`{"type":"ping"}` on the JSON endpoints, a WebSocket ping frame on `/graphql`)
   * and closed if it answers nothing during the period after a ping.
   */
  heartbeat?: { enabled?: boolean | undefined, period?: number | undefined } | undefined
  /** Largest frame accepted in bytes (`WEBSOCKETS_MAX_PAYLOAD`, default 65536); larger closes with 1009. */
  maxPayload?: number | undefined
  /**
   * Unsent bytes one socket may hold (`WEBSOCKETS_MAX_BUFFERED_BYTES`, default 1 MiB), whatever produced them:
   * replies, `send()`, heartbeats, GraphQL results. A client that reads slower is closed with 1008 `Client too slow.`
   * (and cut off 1 s later if the close cannot reach it). The logs stream drops lines for it instead.
   */
  maxBufferedBytes?: number | undefined
  /**
   * Open sockets one client may hold across the plugin's endpoints, per process (`WEBSOCKETS_ADDRESS_CONN_LIMIT`,
   * default unlimited): a client is its address as Fastify reads it (`request.ip`, under `trustProxy`), an IPv6 one
   * its /64. Past it the upgrade is refused with HTTP 429 `REQUESTS_EXCEEDED`.
   */
  connLimitPerAddress?: number | undefined
  /**
   * Refresh sessions one user keeps (`MAX_SESSIONS_PER_USER`, default 100), in the plugin's own stores (memory and
   * Redis): a login past it ends the user's oldest session (on Redis, the one that expires first), its sockets and
   * tokens with it. A `sessionStore` of the app's keeps its own count.
   */
  maxSessionsPerUser?: number | undefined
  /**
   * The `iss` claim of the access tokens the plugin signs (`ACCESS_TOKEN_ISSUER`, default `fastify-realtime`). When the
   * plugin registers `@fastify/jwt` itself, it accepts only tokens with this issuer; with the app's own, any token the
   * app's `@fastify/jwt` verifies is a credential, but only this issuer's carry `admin_access`.
   */
  issuer?: string | undefined
  /**
   * Password checks waiting for their turn (argon2 keeps a core busy for each): at most `limit` in all
   * (`PASSWORD_QUEUE_LIMIT`, default 256) and `perAddress` from one client address (`PASSWORD_QUEUE_PER_ADDRESS`,
   * default 4), served in turn between addresses. Past either, a login is refused at once with SERVICE_UNAVAILABLE
   * (HTTP 503 with `Retry-After`).
   */
  passwordQueue?: { limit?: number | undefined, perAddress?: number | undefined } | undefined
  /** Lifetime of issued access tokens (`ACCESS_TOKEN_TTL`, default `15m`): milliseconds or an `ms` string. */
  accessTokenTtl?: Duration | undefined
  /** Lifetime of refresh sessions (`REFRESH_TOKEN_TTL`, default `7d`). */
  refreshTokenTtl?: Duration | undefined
  /** The server's public URL (`PUBLIC_URL`): its origin may open sockets. */
  publicUrl?: string | undefined
  /** Further origins allowed to open sockets (`CORS_ORIGIN`, comma-separated). A wildcard is refused. */
  origins?: string[] | undefined
  /** Role of the public accountability (default null). */
  publicRole?: string | null | undefined
  /** Claims to identity (default: `id` or `sub`, `role`, `admin_access`). */
  mapClaims?: MapClaims | undefined
  /** Email/password check (default: the embedded directory seeded from `users`). */
  verifyCredentials?: VerifyCredentials | undefined
  /**
   * Users of the embedded directory, or a `UserDirectory` the app made (to look its users up itself). With `redis`,
   * the plugin keeps the directory's used one-time codes there.
   */
  users?: DirectoryUser[] | UserDirectory | undefined
  /** Refresh-session store (default: in memory, or on `redis` when given). */
  sessionStore?: SessionStore | undefined
  /**
   * Redis to share refresh sessions and revocations between processes: a URL, the app's ioredis client (one server,
   * or one that Sentinel finds), or the app's ioredis `Cluster` (a Redis Cluster), of ioredis 5 or 6. Without it
   * everything stays in this process.
   */
  redis?: string | IoredisClient | undefined
  /** Prefix of every Redis key and channel the plugin uses (default `realtime:`). */
  redisPrefix?: string | undefined
  /**
   * Replicas online (of the master each write lands on) that must confirm the writes a failover must not lose before
   * they count (Redis `WAIT`, 500 ms): sessions ended (a logout's, `revokeUser`'s and its mark), sessions listed on
   * their user's set (a login's, a refresh's: `revokeUser` reads it), revocations, one-time code claims. One they do not confirm answers 503 (`SERVICE_UNAVAILABLE`), for the client to retry. Default 0:
   * answered as soon as the master has it, and lost if it dies before its replica has it (Redis replicates
   * asynchronously): the session back, its refresh token working again.
   */
  redisReplicaAcks?: number | undefined
  /** Mount `POST /auth/login`, `/auth/refresh`, `/auth/logout` (default false). */
  authRoutes?: boolean | AuthRoutesOptions | undefined
  /**
   * The cookies of the `cookie` and `session` login modes, named and set as Directus's (`REFRESH_TOKEN_COOKIE_*` and
   * `SESSION_COOKIE_*`). The session cookie also authenticates a socket at the upgrade, on every endpoint.
   */
  cookies?: {
    refresh?: CookieOptions | undefined
    session?: CookieOptions & {
      /** Lifetime of a session token and its cookie (`SESSION_COOKIE_TTL`, default `1d`). */
      ttl?: Duration | undefined
      /**
       * How long the session cookie a refresh replaced still works (`SESSION_REFRESH_GRACE_PERIOD`, default `10s`; `0`
       * turns it off): a refresh with it gets the same new cookie, so that tabs refreshing at once keep their session.
       */
      refreshGrace?: Duration | undefined
    } | undefined
  } | undefined
  /**
   * Email/password attempts (socket auth messages, `POST /auth/login`, `login()`) limited per client IP and per
   * email: after `points` failures (default 10) inside `durationSeconds` (default 60) the next ones get
   * REQUESTS_EXCEEDED without their password being checked, until the window passes. Counted on `redis` when it is
   * given, so every process shares the counters. false turns the limits off.
   */
  attemptLimit?: AttemptLimitOptions | false | undefined
}

/** A cookie the auth routes set. Always HttpOnly, with `Path=/`. */
export interface CookieOptions {
  /** Default `directus_refresh_token` (`REFRESH_TOKEN_COOKIE_NAME`), `directus_session_token` (`SESSION_COOKIE_NAME`). */
  name?: string | undefined
  /** `Secure` (`*_COOKIE_SECURE`, default false): set it when the app is served over HTTPS. */
  secure?: boolean | undefined
  /** `SameSite` (`*_COOKIE_SAME_SITE`, default `lax`); `none` needs `secure`. */
  sameSite?: 'lax' | 'strict' | 'none' | undefined
  /** `Domain` (`*_COOKIE_DOMAIN`, default none: the host that set it). */
  domain?: string | undefined
  /**
   * `Partitioned` (`*_COOKIE_PARTITIONED`, default false; needs `secure`): an app embedded in a frame of another site
   * (with `sameSite: 'none'`) keeps its cookie in a jar of that site's, where browsers blocking third-party cookies
   * keep no other.
   */
  partitioned?: boolean | undefined
}

/** What the upgrade gate resolved, on every websocket request (`request.realtime`); frozen. */
export interface RealtimeUpgrade {
  readonly endpoint: EndpointName
  readonly authMode: AuthMode
  /** Set when the upgrade request carried a valid credential (URL or cookie token). */
  readonly accountability: Accountability | null
  /** Epoch milliseconds when that credential expires. */
  readonly expiresAt: number | null
}

/** Tokens handed out by a login or refresh. */
export interface IssuedTokens {
  access_token: string
  /** Milliseconds the access token is valid for. */
  expires: number
  refresh_token: string
}

/** Why a credential was refused (never the credential itself). */
export type AuthFailureCode = 'AUTH_FAILED' | 'TOKEN_EXPIRED' | 'INVALID_CREDENTIALS' | 'SERVICE_UNAVAILABLE' | 'REQUESTS_EXCEEDED'

/** The payloads of the events of `fastify.realtime.on`. */
export interface RealtimeEventMap {
  /** A socket was authenticated: at the upgrade, by an auth message or by `connection_init`. */
  auth: { connection: RealtimeConnection }
  /** A credential was refused, at the upgrade or on a socket. `reason` says why, for logs; never the credential. */
  authFailed: { endpoint: EndpointName, code: AuthFailureCode, reason: string, ip: string | null }
  /** A socket's credential ran out (TOKEN_EXPIRED) or its session ended (AUTH_REVOKED): it is public now. */
  expire: { connection: RealtimeConnection, code: 'TOKEN_EXPIRED' | 'AUTH_REVOKED' }
  /** A socket is gone. */
  close: { connection: RealtimeConnection, code: number }
}

export type RealtimeEventName = keyof RealtimeEventMap

/** `fastify.realtime`: the application API. */
export interface RealtimeApi {
  /**
   * Sends a JSON message to every matching socket past its handshake, and not waiting to authenticate again, but the
   * GraphQL ones (they speak only graphql-transport-ws) and those closing; returns how many got it.
   */
  send (filter: ConnectionFilter, message: object): number
  /**
   * Closes every matching open socket (one closing already keeps its close); returns how many. The code and reason are `RealtimeConnection.close`'s: any other
   * throws a TypeError before any socket is closed, whether one matches or not.
   */
  close (filter: ConnectionFilter, code?: number, reason?: string): number
  /** The open sockets that match: not those closing (closed, their client yet to answer), which take no frame. */
  connections (filter?: ConnectionFilter): RealtimeConnection[]
  /**
   * Logs in with email and password: a new refresh session and its tokens. Given the HTTP request it answers (your own
   * login route), it is counted as the plugin's `/auth/login`: the attempt against the client's address as well as the
   * email, the password queue's share of that address, `onAuthenticate` (source `login`), and no session for a client
   * gone before it was made. Without it, the attempt counts against the email alone.
   */
  login (credential: PasswordCredential, request?: FastifyRequest): Promise<IssuedTokens>
  /** Ends a refresh session and revokes every socket it authenticated (AUTH_REVOKED). */
  revokeSession (sessionId: string): Promise<void>
  /**
   * Ends every refresh session of a user and revokes their sockets on every process, whatever their token; the
   * user's tokens issued until now are refused (for one access-token TTL). A login whose password check began before
   * it gets no session (INVALID_CREDENTIALS), on any process with the Redis store (`SessionStore.checkBegins`).
   */
  revokeUser (user: string): Promise<void>
  /** Observes authentications, refusals, expiries and closes. */
  on<E extends RealtimeEventName> (event: E, listener: (payload: RealtimeEventMap[E]) => void): void
  off<E extends RealtimeEventName> (event: E, listener: (payload: RealtimeEventMap[E]) => void): void
  /**
   * Whether verified claims are still good (no ended session, no revoked user): hand it to the app's @fastify/jwt as
   * `trusted`, so its HTTP routes refuse a logged-out token as the sockets do. For a session token (the session
   * cookie's) it asks the session store, and answers with a promise: rejected with a 503 `RealtimeError` when the
   * store cannot say. Await it when you call it yourself.
   */
  trusted (request: FastifyRequest, claims: Record<string, unknown>): boolean | Promise<boolean>
  /**
   * The @fastify/jwt that signs and verifies the realtime tokens: the app's own when it registered one before the
   * plugin, else the plugin's, from `secret`, which never decorates the app itself.
   */
  readonly jwt: JwtInstance
  /** Signs an access token for an identity (with its session id, when given). */
  signAccessToken (identity: Identity, sessionId?: string): { access_token: string, expires: number }
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The resolved auth mode and upgrade credential on the plugin's websocket routes; null on the other routes of the
     * scope the plugin is registered in (and its children), undefined outside it: a decoration is its scope's.
     */
    realtime: RealtimeUpgrade | null | undefined
  }
  interface FastifyInstance {
    realtime: RealtimeApi
  }
}
