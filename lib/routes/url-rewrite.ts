// The app's `rewriteUrl`: Fastify runs it on every request before its router, upgrades included, so the router matches
// the URL it returns, not the client's. Fastify keeps it with its options, which `initialConfig` leaves out (a function);
// a Fastify that kept them elsewhere would have the URL as sent matched, as before this read.
import type { IncomingMessage } from 'node:http'

export type UrlRewrite = (request: IncomingMessage) => unknown

/** The app's `rewriteUrl`, bound as Fastify calls it (on the root instance), or undefined when it has none. */
export function urlRewrite (fastify: object): UrlRewrite | undefined {
  // Under Fastify's own `Symbol('fastify.options')`, on the root instance, up the prototype chain of a child scope.
  for (let level: object | null = fastify; level !== null; level = Object.getPrototypeOf(level) as object | null) {
    const key = Object.getOwnPropertySymbols(level).find(own => own.description === 'fastify.options')
    if (key === undefined) continue
    const rewrite = (level as Record<symbol, { rewriteUrl?: unknown }>)[key]!.rewriteUrl
    return typeof rewrite === 'function' ? (rewrite as (this: object, request: IncomingMessage) => unknown).bind(level) : undefined
  }
  return undefined
}
