// A fresh process's resident memory once it listens, before the first socket (`node --expose-gc startup.js <kind>`):
// what every deployment pays. Each kind imports only its own modules.
//   bare         Fastify, @fastify/websocket and graphql-ws on /graphql: what an app without the plugin would load
//   plugin       the plugin with its GraphQL endpoint on the same schema
//   plugin-user  the same with one password user (as the reference server's admin): one argon2id hash at boot
import Fastify from 'fastify'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'

export type StartupKind = 'bare' | 'plugin' | 'plugin-user'

const schema = () => new GraphQLSchema({
  query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString, resolve: () => 'world' } } })
})

async function main (): Promise<void> {
  const kind = process.argv[2] as StartupKind
  const app = Fastify({ logger: false })
  if (kind === 'bare') {
    const { default: fastifyWebsocket } = await import('@fastify/websocket')
    const { makeHandler } = await import('graphql-ws/use/@fastify/websocket')
    await app.register(fastifyWebsocket, { options: { maxPayload: 65536 } })
    app.get('/websocket', { websocket: true }, () => {})
    app.get('/graphql', { websocket: true }, makeHandler({ schema: schema() }))
  } else {
    const { default: realtime } = await import('../lib/index.js')
    await app.register(realtime, {
      env: {},
      secret: 'the-startup-secret-a-long-one-0123456789',
      graphql: { schema: schema() },
      ...(kind === 'plugin-user' ? { users: [{ email: 'admin@example.com', password: 'startup password' }] } : {})
    })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  const gc = (globalThis as { gc?: () => void }).gc!
  for (let pass = 0; pass < 4; pass++) {
    gc()
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  const { rss, heapUsed, external } = process.memoryUsage()
  process.stdout.write(JSON.stringify({ rss, heapUsed, external }) + '\n')
  await app.close()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
