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

/**
 * Every copy of one of the plugin's own cookies the request carries, as the app's parser reads each. More than one: a
 * page of a sibling subdomain set one of that name for the whole site (cookie tossing), which the browser sends beside
 * the app's own, the longer path first; a parser keeps the first, the planted one (plugin-cookies.ts).
 */
export function pluginCookies (request: FastifyRequest, name: string): string[] {
  const value = requestCookies(request)?.[name]
  if (value === undefined) return []
  // A parser is there: it read `value`. Each pair is one copy if the parser reads it under this name: a pair without
  // `=` is none (a browser holds it as a cookie without a name, one a sibling page can plant as
  // `document.cookie = 'directus_session_token'`), nor one whose name starts with a no-break space (0xA0, which
  // Chromium keeps in a sibling's Set-Cookie): cookies of other names to the parser and the browser, no clearing
  // reaches them, and counted as copies they would end every session of the browser's own cookie for good.
  const header = String(request.headers.cookie)
  // The name once in the header is one copy at most: no pair to parse again (every upgrade and refresh asks).
  if (header.indexOf(name) === header.lastIndexOf(name)) return [value]
  const parse = (request.server as unknown as { parseCookie: (header: string) => Cookies }).parseCookie
  const copies = header.split(';').filter(pair => pair.includes(name)).map(pair => parse(pair)[name])
  const named = copies.filter(copy => copy !== undefined)
  return named.length <= 1 ? [value] : named
}
