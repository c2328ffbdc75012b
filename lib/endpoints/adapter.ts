// What every endpoint adapter is given: its endpoint's config and the plugin's shared parts.
import type { FastifyBaseLogger } from 'fastify'
import type { Authenticator } from '../auth/authenticator.js'
import type { EndpointConfig } from '../config.js'
import type { Registry } from '../connection/registry.js'
import type { GuardPolicy } from '../connection/guard.js'
import type { Outbound } from '../connection/outbound.js'

export interface AdapterOptions {
  endpoint: EndpointConfig
  authenticator: Authenticator
  registry: Registry
  /** The endpoint's mode, public role and clocks, shared by its guards. */
  policy: GuardPolicy
  maxPayload: number
  /** The cap on every socket's unsent bytes. */
  outbound: Outbound
  log: FastifyBaseLogger
}
