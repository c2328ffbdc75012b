// The reference server (`npm start`) for the browser tests, on a random loopback port. It records each upgrade
// request as it arrived (the headers the browser sent) and what it was answered, and counts successful refreshes.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Test } from 'tap'
import { buildReferenceServer } from '../../example/app.js'
import { admin, secret } from '../helpers.js'

export interface Upgrade {
  path: string
  origin: string | undefined
  cookie: string | undefined
  /** The HTTP status of a refused upgrade; undefined while the socket is accepted and open. */
  status?: number
}

export interface Reference {
  app: FastifyInstance
  /** `http://127.0.0.1:<port>` */
  origin: string
  upgrades: Upgrade[]
  /** Successful `POST /auth/refresh` answers so far. */
  refreshes: () => number
}

/** `prepare`: hooks of the test's own, added before the server listens. */
export async function startReference (t: Test, env: Record<string, string> = {}, prepare?: (app: FastifyInstance) => void): Promise<Reference> {
  const { app } = await buildReferenceServer({
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    SECRET: secret,
    LOG_LEVEL: 'silent',
    ...env
  })
  const upgrades: Upgrade[] = []
  const recorded = new WeakMap<FastifyRequest, Upgrade>()
  let refreshes = 0
  app.addHook('onRequest', async (request) => {
    if (!request.ws) return
    const upgrade = { path: request.url.split('?')[0], origin: request.headers.origin, cookie: request.headers.cookie }
    upgrades.push(upgrade)
    recorded.set(request, upgrade)
  })
  // Counted before the answer leaves, so before the browser can act on it.
  app.addHook('onSend', async (request, reply) => {
    const upgrade = recorded.get(request)
    if (upgrade) upgrade.status = reply.statusCode
    if (request.url === '/auth/refresh' && reply.statusCode === 200) refreshes++
  })
  prepare?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  return { app, origin: `http://127.0.0.1:${port}`, upgrades, refreshes: () => refreshes }
}
