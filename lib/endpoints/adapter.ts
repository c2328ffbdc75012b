// What every endpoint adapter is given: its endpoint's config and the plugin's shared parts.
import type { FastifyBaseLogger } from 'fastify'
import type { Authenticator } from '../auth/authenticator.js'
import type { EndpointConfig } from '../config.js'
import type { Registry } from '../connection/registry.js'

export interface AdapterOptions {
  endpoint: EndpointConfig
  authenticator: Authenticator
  registry: Registry
  publicRole: string | null
  maxPayload: number
  log: FastifyBaseLogger
}
