// Every key and channel the plugin keeps on Redis, all under `prefix` (the `redisPrefix` option). A session's key
// carries its id as a hash tag, a user's keys the user: in a Redis Cluster each lives in one slot, and one user's keys
// in the same one. No script or transaction touches keys of two tags, so none can span two slots (a session's user
// is known only once its key has been read: its key cannot be tagged with the user). Nor, but the TOTP claim's, two
// keys at all: while a slot moves between nodes its keys are on either, and Redis refuses a script whose keys are not
// all on one (TRYAGAIN) until the move ends.
export interface RedisKeys {
  /** A refresh session: a hash of its identity, current token hash and expiry. */
  session (id: string): string
  /** The ids of a user's sessions, scored by when each expires, for `endUser`. */
  userSessions (user: string): string
  /** The plain set of them that 0.1.0 kept, read by `endUser` until it expires: sessions a process of 0.1.0 made. */
  userSessionsBefore (user: string): string
  /** When `endUser` last began for a user, by `revocationClock`: a login whose check began before then is not listed. */
  userSessionsEnded (user: string): string
  /**
   * Never written: the key whose node's clock orders logins' checks against `endUser` (in a cluster, one node's, so
   * one clock for every process).
   */
  revocationClock: string
  /** A user's last accepted TOTP step. */
  otpStep (user: string): string
  /** The nonce of the claim that set the user's last step: that claim made again is not a replay. */
  otpClaim (user: string): string
  /** Every revocation in force, scored by when it lapses. */
  revoked: string
  /** rate-limiter-flexible's counters, `<attempts>:<ip or email hash>`. */
  attempts (counter: 'ip' | 'email'): string
  /** The channels: under the client's `channelScope` too. */
  revocationsChannel: string
  logsChannel: string
  /** A process's own channel, on which it probes that its subscriber still hears what is published. */
  subscriptionProbe (process: string): string
}

/**
 * What keeps apart on pub/sub the apps a client keeps apart on keys: channels belong to the whole server, whatever the
 * database, and ioredis puts its `keyPrefix` on keys, not on channels. Nothing for database 0 without a `keyPrefix`.
 */
export function channelScope (client: { options: { keyPrefix?: string, db?: number } }): string {
  const { keyPrefix = '', db = 0 } = client.options
  return `${db === 0 ? '' : `db${db}:`}${keyPrefix}`
}

/** `channelScope`: the client's, so that apps it keeps apart are apart on pub/sub as well. */
export function redisKeys (prefix: string, channelScope = ''): RedisKeys {
  return {
    session: (id) => `${prefix}{s:${id}}:session`,
    // Named anew when it became a sorted set: no old key meets a command of the wrong type.
    userSessions: (user) => `${prefix}{u:${user}}:session-expiries`,
    userSessionsBefore: (user) => `${prefix}{u:${user}}:sessions`,
    userSessionsEnded: (user) => `${prefix}{u:${user}}:sessions-ended-at`,
    revocationClock: `${prefix}revocation-clock`,
    otpStep: (user) => `${prefix}{u:${user}}:otp-step`,
    otpClaim: (user) => `${prefix}{u:${user}}:otp-claim`,
    revoked: `${prefix}revoked`,
    attempts: (counter) => `${prefix}attempts:${counter}`,
    revocationsChannel: `${channelScope}${prefix}revocations`,
    logsChannel: `${channelScope}${prefix}logs`,
    subscriptionProbe: (process) => `${channelScope}${prefix}probe:${process}`
  }
}
