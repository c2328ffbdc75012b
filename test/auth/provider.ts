// The identity provider of the provider tests: keys made once per file, a JWKS server on loopback that can go down,
// hang, answer late or answer something else, and the reference server started against it.
import { createServer, type Server, type ServerResponse } from 'node:http'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { createSigner } from 'fast-jwt'
import { buildReferenceServer } from '../../example/app.js'
import { admin, connect, secret } from '../helpers.js'

export const issuer = 'https://id.example.com/'
export const audience = 'realtime-api'

export interface ProviderKey {
  kid: string
  alg: 'RS256' | 'ES256' | 'EdDSA'
  privateKey: KeyObject
  publicJwk: Record<string, unknown>
}

// RSA key generation is the file's costliest step: each key is made once and shared by the tests that name it.
const made = new Map<string, ProviderKey>()

export function providerKey (kid: string, alg: ProviderKey['alg']): ProviderKey {
  const known = made.get(`${alg}:${kid}`)
  if (known) return known
  const key = newProviderKey(kid, alg)
  made.set(`${alg}:${kid}`, key)
  return key
}

export function newProviderKey (kid: string, alg: ProviderKey['alg']): ProviderKey {
  const { privateKey, publicKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')
  return { kid, alg, privateKey, publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } }
}

/**
 * The provider: publishes `keys` (and its discovery document), counts fetches, answers 503 while `down`, `delayMs` late,
 * and `padding` bytes more; while `hanging`, it answers nothing until `release()`.
 */
export class Provider {
  keys: ProviderKey[] = []
  fetches = 0
  down = false
  hanging = false
  readonly #held: ServerResponse[] = []
  delayMs = 0
  padding = 0
  /** Answered (200, JSON) instead of the key set when set: a maintenance page's or a proxy's error, say. */
  body: string | null = null
  readonly #server: Server

  constructor () {
    this.#server = createServer((request, response) => {
      this.fetches++
      if (this.hanging) {
        this.#held.push(response)
        return
      }
      if (this.down) {
        response.writeHead(503).end()
        return
      }
      if (request.url === '/.well-known/openid-configuration') {
        const origin = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: `${origin}/`, jwks_uri: `${origin}/oauth/jwks.json` }))
        return
      }
      const keys = this.body ?? JSON.stringify({ keys: this.keys.map(key => key.publicJwk), ...(this.padding ? { padding: 'x'.repeat(this.padding) } : {}) })
      setTimeout(() => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(keys)
      }, this.delayMs)
    })
  }

  /** Answers the requests held while `hanging` (503), and holds no more. */
  release (): void {
    this.hanging = false
    for (const response of this.#held.splice(0)) response.writeHead(503).end()
  }

  async start (t: Test): Promise<string> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { this.#server.close() })
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/oauth/jwks.json`
  }

  /** A token signed by `key`, with the provider's issuer and audience unless `claims` says otherwise; no `exp` for null. */
  sign (key: ProviderKey, claims: Record<string, unknown> = {}, ttlSeconds: number | null = 300): string {
    const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    const signer = createSigner({ key: pem, algorithm: key.alg, kid: key.kid, ...(ttlSeconds === null ? {} : { expiresIn: ttlSeconds * 1000 }) })
    return signer({ sub: 'provider-user', email: 'pat@example.com', role: 'editor', iss: issuer, aud: audience, ...claims })
  }
}

export async function start (t: Test, provider: Provider, env: Record<string, string> = {}, logStream?: { write (line: string): void }) {
  const jwksUrl = await provider.start(t)
  const server = await buildReferenceServer({
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    SECRET: secret,
    LOG_LEVEL: 'silent',
    JWKS_URL: jwksUrl,
    JWT_ISSUER: issuer,
    JWT_AUDIENCE: audience,
    ...env
  }, { logStream })
  t.teardown(() => server.app.close())
  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = server.app.server.address() as AddressInfo
  return { server, url: (path: string) => `ws://127.0.0.1:${port}${path}` }
}

/** Authenticates a handshake-mode socket with `token` in an auth message; answers the auth reply and whoami's. */
export async function authAndWhoami (url: string, token: string): Promise<{ auth: unknown, whoami?: unknown }> {
  const client = await connect(url)
  client.send({ type: 'auth', access_token: token })
  const auth = await client.next()
  if ((auth as { status: string }).status !== 'ok') {
    await client.close()
    return { auth }
  }
  client.send({ type: 'whoami' })
  const whoami = await client.next()
  await client.close()
  return { auth, whoami }
}

export const patOk = {
  auth: { type: 'auth', status: 'ok' },
  whoami: { type: 'whoami', data: { id: 'provider-user', email: 'pat@example.com', role: 'editor', admin: false } }
}

/** An auth message's refusal, as `authAndWhoami` answers it. */
export const refusal = { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } }
