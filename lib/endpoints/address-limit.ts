// Open sockets per client, across the plugin's endpoints: one client (an IPv4 address, an IPv6 /64) cannot take every
// place the connection limits leave, nor every file descriptor the process has.
import type { Socket } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { clientNetwork, requestIp, unknownAddress } from '../client-network.js'

export class AddressLimit {
  readonly #limit: number
  /** Open sockets by client network; a network with none has no entry. */
  readonly #open = new Map<string, number>()

  /** `limit`: Infinity counts nothing (no listener on any socket). */
  constructor (limit: number) {
    this.#limit = limit
  }

  /** Counts the upgrade's socket against its client's network until its TCP connection closes; false past the limit. */
  take (request: FastifyRequest, socket: Socket): boolean {
    if (this.#limit === Infinity) return true
    const network = clientNetwork(requestIp(request) ?? unknownAddress)
    const open = this.#open.get(network) ?? 0
    if (open >= this.#limit) return false
    this.#open.set(network, open + 1)
    socket.once('close', () => this.#release(network))
    return true
  }

  #release (network: string): void {
    const left = this.#open.get(network)! - 1
    if (left === 0) this.#open.delete(network)
    else this.#open.set(network, left)
  }
}
