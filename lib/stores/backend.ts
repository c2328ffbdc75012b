// Where the state that processes share lives: this process's memory by default, or one Redis for every process on
// it. The plugin picks a backend once, and takes every store from it.
import type { FastifyBaseLogger } from 'fastify'
import type { RedisConnections } from './redis-connection.js'
import type { AttemptLimit, AttemptLimiter } from './attempts/contract.js'
import { memoryAttempts } from './attempts/memory.js'
import { redisAttempts } from './attempts/redis.js'
import type { LogFeed } from './log-feed/contract.js'
import { MemoryLogFeed } from './log-feed/memory.js'
import { RedisLogFeed } from './log-feed/redis.js'
import type { OtpSteps } from './otp-steps/contract.js'
import { RedisOtpSteps } from './otp-steps/redis.js'
import { RememberedOtpSteps } from './otp-steps/remembered.js'
import type { RevocationFeed } from './revocation-feed/contract.js'
import { MemoryRevocationFeed } from './revocation-feed/memory.js'
import { RedisRevocationFeed } from './revocation-feed/redis.js'
import { MemorySessionStore } from './sessions/memory.js'
import { RedisSessionStore } from './sessions/redis.js'
import type { SessionStore } from '../../types/index.js'

export interface Backend {
  /** `maxSessionsPerUser`: a new session past it ends the user's oldest. */
  sessions (maxSessionsPerUser: number): SessionStore
  /**
   * `verifier`: what the registration verifies tokens with. In memory, the registrations with one take each other's
   * tokens, and share their revocations.
   */
  revocationFeed (verifier: unknown): RevocationFeed
  /**
   * `node` names this process in the lines it publishes; `maxUnansweredBytes`: how long the lines it published and
   * Redis has not answered yet may be together.
   */
  logFeed (node: string, maxUnansweredBytes: number): LogFeed
  attempts (limit: AttemptLimit): AttemptLimiter
  /** Absent in memory: a user directory keeps its own, in this process. */
  otpSteps?: () => OtpSteps
}

export const memoryBackend: Backend = {
  sessions: (maxSessionsPerUser) => new MemorySessionStore({ maxSessionsPerUser }),
  revocationFeed: (verifier) => new MemoryRevocationFeed(verifier),
  logFeed: (node) => new MemoryLogFeed(node),
  attempts: (limit) => memoryAttempts(limit)
}

/**
 * Every key and channel starts with `prefix` (the `redisPrefix` option); the writes a failover must not lose count once
 * `replicaAcks` replicas have them (`redisReplicaAcks`).
 */
export function redisBackend (redis: RedisConnections, prefix: string, log: FastifyBaseLogger, replicaAcks = 0): Backend {
  return {
    sessions: (maxSessionsPerUser) => new RedisSessionStore(redis.commands, prefix, maxSessionsPerUser, replicaAcks),
    revocationFeed: () => new RedisRevocationFeed(redis, prefix, log, replicaAcks),
    logFeed: (node, maxUnansweredBytes) => new RedisLogFeed(redis, prefix, node, maxUnansweredBytes),
    attempts: (limit) => redisAttempts(limit, redis.commands, prefix),
    // Remembered here too: a Redis restarted empty takes no code again on the process that accepted it.
    otpSteps: () => new RememberedOtpSteps(new RedisOtpSteps(redis.commands, prefix, replicaAcks))
  }
}
