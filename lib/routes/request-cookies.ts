// The cookies of a request, as the app's @fastify/cookie parses them, whenever the plugin needs its own: the app may
// parse them in a later hook than the upgrade's `onRequest` (its `hook` option), or in none (`hook: false`).
import type { FastifyRequest } from 'fastify'

export type Cookies = Record<string, string | undefined>

/**
 * The request's cookies: those the app's parser read, or else read now with the app's parser and left on the request
 * (where @fastify/jwt's cookie lookup reads them). Without a cookie parser, none.
 */
export function requestCookies (request: FastifyRequest): Cookies | undefined {
  const fields = request as unknown as { cookies?: Cookies | null }
  if (fields.cookies != null) return fields.cookies
  const parse = (request.server as unknown as { parseCookie?: (header: string) => Cookies }).parseCookie
  const header = request.headers.cookie
  if (parse === undefined || header === undefined) return undefined
  fields.cookies = parse(header)
  return fields.cookies
}
