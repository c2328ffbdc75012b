// `npm start`: the reference server on HOST:PORT (127.0.0.1:8055 by default, as Directus).
import { buildReferenceServer } from './app.js'
import { listenAddress } from './listen-address.js'

// Checked before anything starts: a wrong PORT fails boot at once, naming it.
const { host, port } = listenAddress(process.env)
const { app, adminEmail: email, generatedPassword } = await buildReferenceServer(process.env)
const address = await app.listen({ host, port })
app.log.info(`fastify-realtime reference server listening on ${address} (sockets at ${address.replace(/^http/, 'ws')}/websocket and /graphql)`)
app.log.info(`log in: POST ${address}/auth/login {"email":"${email}","password":${generatedPassword ? `"${generatedPassword}" (generated for this start; set ADMIN_PASSWORD to choose one)` : '"<ADMIN_PASSWORD>"'}}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // A close that fails rejects unhandled: the process exits 1.
  process.once(signal, async () => {
    await app.close()
    process.exit(0)
  })
}
