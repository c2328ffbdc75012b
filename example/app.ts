// The reference server (`npm start`): the plugin with the embedded defaults, for trying it and for black-box tests.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import realtime, { UserDirectory, type DirectoryUser, type Identity } from '../lib/index.js'

export interface ReferenceServer {
  app: FastifyInstance
  /** Set when ADMIN_PASSWORD was not given: the one generated for this start. */
  generatedPassword: string | null
}

// `?access_token=` must never reach a log line: the request serializer drops it from the URL.
export function redactUrl (url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/gi, '$1[redacted]')
}

export async function buildReferenceServer (env: Record<string, string | undefined> = process.env): Promise<ReferenceServer> {
  const app = Fastify({
    logger: {
      level: env.LOG_LEVEL ?? 'info',
      serializers: {
        req: (request) => ({ method: request.method, url: redactUrl(request.url), host: request.host, remoteAddress: request.ip })
      }
    }
  })

  const directory = new UserDirectory()
  const generatedPassword = env.ADMIN_PASSWORD ? null : randomBytes(12).toString('base64url')
  const adminEmail = env.ADMIN_EMAIL ?? 'admin@example.com'
  await directory.add({ email: adminEmail, password: env.ADMIN_PASSWORD ?? generatedPassword!, admin: true, role: 'administrator' })
  if (env.USERS_FILE) {
    const users = JSON.parse(await readFile(env.USERS_FILE, 'utf8')) as DirectoryUser[]
    for (const user of users) await directory.add(user)
  }

  let secret = env.SECRET
  if (!secret) {
    secret = randomBytes(32).toString('base64url')
    app.log.warn('SECRET is not set: access tokens are signed with a key generated for this start and die with it')
  }

  const me = (identity: { user: string | null, role: string | null, admin: boolean }) => identity.user === null
    ? null
    : { id: identity.user, email: directory.emailOf(identity.user), role: identity.role, admin: identity.admin }

  await app.register(realtime, {
    env: { ...env, SECRET: secret },
    verifyCredentials: directory.verifyCredentials,
    authRoutes: true,
    rest: {
      handlers: {
        whoami (message, connection) {
          connection.send({ type: 'whoami', uid: message.uid, data: me(connection.accountability) })
        }
      }
    }
  })

  app.get('/server/ping', async (_request, reply) => reply.type('text/plain').send('pong'))
  return { app, generatedPassword }
}

export type { Identity }
