// A node:cluster worker of test/plugin/cluster-workers.test.ts: the plugin with the embedded directory and its auth
// routes on the port the workers share, with Redis when REDIS_URL is set. It tells the primary its warnings once it
// listens.
import Fastify from 'fastify'
import realtime, { MemorySessionStore } from '../../lib/index.js'
import { admin, secret, testHashing } from '../helpers.js'
import { UserDirectory } from '../../lib/auth/user-directory.js'

const warnings: string[] = []
const app = Fastify({
  logger: {
    level: 'warn',
    stream: { write: (line: string) => { warnings.push((JSON.parse(line) as { msg: string }).msg) } }
  }
})
const users = new UserDirectory({ passwordHashing: testHashing })
await users.add(admin)
// SESSION_STORE set: a store of the app's own, as a database the workers share would be.
const sessionStore = process.env.SESSION_STORE ? new MemorySessionStore() : undefined
await app.register(realtime, { secret, users, authRoutes: true, redis: process.env.REDIS_URL, sessionStore })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.send!({ warnings })
process.once('disconnect', () => { app.close().catch(() => {}) })
