// A node:cluster worker (pm2's cluster mode forks them too) shares its port with the other workers, each request and
// upgrade going to any of them: without Redis each keeps its own stores, and what one knows the others never hear.
import cluster from 'node:cluster'

/** The warning for a registration in a cluster worker without `redis`, or null where there is nothing to say. */
export function workerWithoutRedis (redis: unknown, sessionStore: unknown): string | null {
  if (!cluster.isWorker || redis) return null
  const sessions = sessionStore
    ? ''
    : ' and sessions (a refresh token works only on the worker that issued it: the others answer 401 INVALID_CREDENTIALS)'
  return `fastify-realtime runs in a node:cluster worker without redis: each worker has its own revocations, attempt counters, log lines${sessions}, so a logout or revokeUser reaches only one worker's sockets and tokens; give every worker one Redis (the redis option)`
}
