// The demo page at `/`: log in through @directus/sdk, open sockets, watch every frame. The client libraries are
// served unbundled from their installed packages, and only the files named here: no request path reaches the disk.
import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'

const html = 'text/html; charset=utf-8'
const script = 'text/javascript; charset=utf-8'

// tsc copies no .html or .js file into dist/ or .build/: compiled there, the plugin reads them from example/demo/.
const pageDir = new URL('.', import.meta.url).href.replace(/\/(?:dist|\.build)\/example\/demo\/$/, '/example/demo/')

/** graphql-ws's browser client and the chunks it imports by relative path (their names carry a build hash). */
async function graphqlWsFiles (): Promise<URL[]> {
  const client = new URL(import.meta.resolve('graphql-ws/client'))
  const source = await readFile(client, 'utf8')
  const chunks = new Set([...source.matchAll(/from '\.\/([\w-]+\.js)'/g)].map(([, name]) => name))
  return [client, ...[...chunks].map(name => new URL(name, client))]
}

export async function demoPage (fastify: FastifyInstance): Promise<void> {
  const files: [path: string, file: URL, type: string][] = [
    ['/', new URL('index.html', pageDir), html],
    ['/demo/page.js', new URL('page.js', pageDir), script],
    // A self-contained ES module: no bundler needed.
    ['/demo/sdk.js', new URL(import.meta.resolve('@directus/sdk')), script],
    ...(await graphqlWsFiles()).map((file): [string, URL, string] => [`/demo/graphql-ws/${file.pathname.split('/').pop()}`, file, script])
  ]
  for (const [path, file, type] of files) {
    const body = await readFile(file)
    fastify.get(path, (_request, reply) => reply.type(type).send(body))
  }
}
