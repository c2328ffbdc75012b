// How the plugin sets its two cookies, and how it has a browser drop every copy of one when a request carries it more
// than once: a page of a sibling subdomain set one for the whole site (cookie tossing), or the app's cookie settings
// changed under the browser. Nothing tells the browser's own copy from the other, so neither is a credential; and
// unless the browser loses them all, its own copy stays beside the other one for as long as that one says: every
// request refused, or, once a logout cleared the own one alone, the planted session the only one left.
import { isIP } from 'node:net'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CookieConfig } from '../config.js'

/**
 * The attributes of the plugin's cookie; `maxAgeMs` for a cookie set (none for one cleared). Each one named, those it
 * goes without as undefined: the app's @fastify/cookie lays its `parseOptions` (its own cookies' defaults) under every
 * cookie's options, and an app's Domain would give the whole site the credential, its Partitioned or Expires another
 * cookie than the plugin's.
 */
export function cookieAttributes (cookie: CookieConfig, maxAgeMs?: number): CookieSerializeOptions {
  return {
    // Never signed, whatever the app's @fastify/cookie signs by default: the plugin reads its cookies as it set them.
    signed: false,
    path: '/',
    httpOnly: true,
    sameSite: cookie.sameSite,
    secure: cookie.secure,
    domain: cookie.domain,
    // In a frame of another site, where browsers keep no other cookie: one jar per embedding site (CHIPS).
    partitioned: cookie.partitioned,
    expires: undefined,
    priority: undefined,
    ...(maxAgeMs === undefined ? {} : { maxAge: Math.floor(maxAgeMs / 1000) })
  }
}

// Of a cookie sent more than once, the sessions of the last this many copies are ended, each a store lookup (a Cookie
// header carries about 180 copies): the browser's own, on `/`, comes after every longer path (RFC 6265 5.4), and only
// one copy for each domain shares its path. Every copy is dropped all the same.
const maxCopiesEnded = 8

/**
 * Ends the session each copy of `cookie` names (`end` tells whether a copy is the plugin's, and throws when the store
 * cannot say), then has the browser drop the cookie: every copy when the request carried more than one; its one copy
 * as the plugin set it, but with `oursOnly` one the plugin cannot show is its own: another app on the same host
 * (another port, a Directus behind the same proxy) shares its name, and it may be the browser's only hold there. No
 * browser holds the sessions ended any more, and no logout could reach their sockets. False, and nothing dropped, when
 * the store could not say: the browser keeps them to try again.
 */
export async function dropCopies (request: FastifyRequest, reply: FastifyReply, cookie: CookieConfig, copies: string[],
  end: (copy: string) => Promise<boolean>, oursOnly = false): Promise<boolean> {
  if (copies.length === 0) return true
  let ours: boolean[]
  try {
    ours = await Promise.all(copies.slice(-maxCopiesEnded).map(end))
  } catch {
    return false
  }
  if (copies.length > 1) clearEveryCopy(request, reply, cookie)
  else if (ours[0]! || !oursOnly) clearOnlyCopy(request, reply, cookie)
  return true
}

/**
 * Has the browser drop the one copy of `cookie` a request carried, or replace it with the one set after this: on `/`,
 * host-only and on each domain of the host, as the copy may have been set before the app's domain setting changed (one
 * added, removed). A cookie of another Domain is another cookie: the browser would keep the old copy beside the new,
 * and the next request, carrying both, is refused as tossed, the user logged out. The request carried no other copy a
 * clearing on `/` could reach (a browser sends every one matching it), so no other cookie goes.
 */
export function clearOnlyCopy (request: FastifyRequest, reply: FastifyReply, cookie: CookieConfig): void {
  // A __Host- cookie has neither Domain nor another path. The configured domain's last: a cookie set after this
  // replaces its clearing in place (@fastify/cookie keeps one per name, domain and path), and comes after the others.
  const others = /^__host-/i.test(cookie.name) ? [] : [...domainsOf(request.hostname, undefined)].filter(domain => domain !== cookie.domain)
  for (const domain of [...others, cookie.domain]) clear(request, reply, cookie, cookieAttributes({ ...cookie, domain }))
}

/**
 * Clears `cookie` with `attributes`, and its copy of the other kind, `Partitioned` or not: a browser keeps one of each
 * side by side and a clearing reaches only the kind it names, so the copy set before the app turned the option on (or
 * off) would stay beside the new one, every request refused as tossed until it expires. Secure alone: a Partitioned
 * cookie is. Through the header, as @fastify/cookie keeps one cookie per name, domain and path.
 */
function clear (request: FastifyRequest, reply: FastifyReply, cookie: CookieConfig, attributes: CookieSerializeOptions): void {
  reply.clearCookie(cookie.name, attributes)
  if (!cookie.secure) return
  const { partitioned: _, ...other } = attributes
  const serialize = (request.server as unknown as { serializeCookie: (name: string, value: string, options: CookieSerializeOptions) => string }).serializeCookie
  reply.header('set-cookie', serialize(cookie.name, '', { ...other, ...(cookie.partitioned ? {} : { partitioned: true }), expires: new Date(0), maxAge: 0 }))
}

// A browser drops a cookie only for a clearing that names its domain and path. Parents deeper than this are no real
// deployment's, and the Host header is the client's to make long.
const maxParents = 8
// What may go in a clearing's Domain and Path: a host name's labels, and a path's characters as a browser sends them
// (percent-encoded); anything else is no copy a browser could hold, and would make @fastify/cookie throw.
const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i
const pathCharacters = /^[A-Za-z0-9\-._~!$&'()*+,=:@%/]*$/
const maxSegments = 16

/** Clears `cookie` for every domain and path on which the browser could have sent a copy with this request. */
function clearEveryCopy (request: FastifyRequest, reply: FastifyReply, cookie: CookieConfig): void {
  // The URL the browser sent, before the app's `rewriteUrl`: a cookie's path matches that one.
  const paths = pathsOf(request.originalUrl)
  for (const domain of domainsOf(request.hostname, cookie.domain)) {
    for (const path of paths) clear(request, reply, cookie, { ...cookieAttributes({ ...cookie, domain }), path })
  }
}

/** Host-only (undefined), the host and each of its parents but the last label, and the configured domain. */
function domainsOf (hostname: string, configured: string | undefined): Set<string | undefined> {
  const domains = new Set<string | undefined>([undefined])
  const labels = hostname.split('.')
  if (isIP(hostname) === 0 && labels.every(part => label.test(part))) {
    for (let i = Math.max(0, labels.length - 1 - maxParents); i < labels.length - 1; i++) domains.add(labels.slice(i).join('.'))
  }
  if (configured !== undefined) domains.add(configured)
  return domains
}

/**
 * Every cookie path that matches the request's (RFC 6265 5.1.4): `/`, each prefix up to a `/`, with and without it,
 * and the path itself. None for a path of more segments than any of the plugin's routes has under a real prefix: a
 * router that ignores duplicate slashes would take `/auth////…/logout`, each slash two more clearings.
 */
function pathsOf (url: string): Set<string> {
  const path = url.split('?', 1)[0]!
  const paths = new Set(['/'])
  if (!pathCharacters.test(path) || path.split('/').length > maxSegments) return paths
  for (let slash = path.indexOf('/', 1); slash !== -1; slash = path.indexOf('/', slash + 1)) {
    paths.add(path.slice(0, slash))
    paths.add(path.slice(0, slash + 1))
  }
  paths.add(path)
  return paths
}
