// Building accountabilities: the one place an identity meets the client it came from.
import type { FastifyRequest } from 'fastify'
import { requestIp } from '../client-network.js'
import type { Accountability, Identity } from '../../types/index.js'

/**
 * Where a client came from, read from its upgrade request: a connection is one (it keeps the request for handlers
 * anyway), and so is an upgrade refused before any socket. The address is read from the TCP socket when first asked
 * for (a system call most handshakes never need), which is what `request.ip` answers too unless a proxy header is there
 * to interpret.
 */
export class ClientInfo {
  /** The upgrade request: it lives as long as its socket. */
  readonly request: FastifyRequest
  /** undefined until read. */
  #ip: string | null | undefined

  constructor (request: FastifyRequest) {
    this.request = request
    // With X-Forwarded-For, `request.ip` applies the app's trustProxy setting: that answer is taken now.
    this.#ip = request.headers['x-forwarded-for'] !== undefined ? requestIp(request) ?? null : undefined
  }

  get userAgent (): string | null {
    return this.request.headers['user-agent'] ?? null
  }

  get origin (): string | null {
    return this.request.headers.origin ?? null
  }

  /** null under injectWS, whose sockets have no address, and for an address first asked for after the close. */
  get ip (): string | null {
    this.pin()
    return this.#ip as string | null
  }

  /** Reads the address now, while the socket has one. */
  pin (): void {
    if (this.#ip === undefined) this.#ip = this.request.raw.socket?.remoteAddress ?? null
  }
}

export function authenticatedAccountability (identity: Identity, session: string | undefined, client: ClientInfo): Accountability {
  const { user, role, admin } = identity
  const { ip, userAgent, origin } = client
  return session === undefined
    ? { user, role, admin, ip, userAgent, origin }
    : { user, role, admin, ip, userAgent, origin, session }
}

/** Never null: a socket nobody authenticated still has this one (GHSA-849r-qrwj-8rv4). */
export function publicAccountability (publicRole: string | null, client: ClientInfo): Accountability {
  const { ip, userAgent, origin } = client
  return { user: null, role: publicRole, admin: false, ip, userAgent, origin }
}
