// `npm start`: the reference server on HOST:PORT (127.0.0.1:8055 by default, as Directus).
import { buildReferenceServer } from './app.js'

const { app, generatedPassword } = await buildReferenceServer(process.env)
const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 8055)
const address = await app.listen({ host, port })
const email = process.env.ADMIN_EMAIL ?? 'admin@example.com'
app.log.info(`fastify-realtime reference server listening on ${address} (sockets at ${address.replace(/^http/, 'ws')}/websocket and /graphql)`)
app.log.info(`log in: POST ${address}/auth/login {"email":"${email}","password":${generatedPassword ? `"${generatedPassword}" (generated for this start; set ADMIN_PASSWORD to choose one)` : '"<ADMIN_PASSWORD>"'}}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
