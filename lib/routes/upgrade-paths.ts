// Whether an upgrade's URL names one of the plugin's websocket routes, as the app's router (find-my-way) would match
// it: the app's `rewriteUrl` applied, an absolute-form target read for its path, its query, fragment and (with
// `useSemicolonDelimiter`) parameters off, percent-decoded, and its options for trailing and duplicate slashes and
// case. The routes are static paths, so this is all their matching takes.
import type { IncomingMessage } from 'node:http'
import type { UrlRewrite } from './url-rewrite.js'

interface RouterOptions {
  ignoreTrailingSlash?: boolean
  ignoreDuplicateSlashes?: boolean
  caseSensitive?: boolean
  useSemicolonDelimiter?: boolean
}

type AppConfig = RouterOptions & { routerOptions?: RouterOptions }
const routerOptions = (config: AppConfig): RouterOptions => ({ ...config, ...config.routerOptions })

/**
 * Whether Fastify gives a route at `prefix` itself a twin with a trailing slash (a second route, of which onRoute is
 * not told): not when its router takes both URLs at the one route, as it does with these options.
 */
export function slashTwin (prefix: string, config: AppConfig): boolean {
  const { ignoreTrailingSlash, ignoreDuplicateSlashes } = routerOptions(config)
  return ignoreTrailingSlash !== true && (ignoreDuplicateSlashes !== true || !prefix.endsWith('/'))
}

/**
 * `config`: the app's `initialConfig` (Fastify 5 has the router's options at the top and in `routerOptions`);
 * `rewrite`: the app's `rewriteUrl` (url-rewrite.ts).
 */
export function upgradePaths (paths: ReadonlySet<string>, config: AppConfig, rewrite?: UrlRewrite): (request: IncomingMessage) => boolean {
  const options = routerOptions(config)
  const normalize = (path: string): string => {
    if (options.ignoreDuplicateSlashes) path = path.replace(/\/{2,}/g, '/')
    if (options.ignoreTrailingSlash && path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
    return options.caseSensitive === false ? path.toLowerCase() : path
  }
  const known = new Set([...paths].map(normalize))
  const delimiters = options.useSemicolonDelimiter ? ['?', '#', ';'] : ['?', '#']
  // Runs on every upgrade: cut by index, and decode only a path that has an escape (decodeURI leaves the rest as is).
  return (request) => {
    const url = rewrite === undefined ? request.url! : rewritten(rewrite, request)
    if (url === null) return false
    let path = url.startsWith('/') ? url : absolutePath(url)
    if (path === null) return false
    for (const delimiter of delimiters) path = cut(path, delimiter)
    if (path.includes('%')) {
      try {
        // As the router decodes it: reserved characters (`%40`, `%2F`) stay escaped, and so does `%25`.
        path = decodeURI(path.replaceAll('%25', '%2525'))
      } catch {
        return false // no path the router matches
      }
    }
    return known.has(normalize(path))
  }
}

/** The URL the router matches; null when the app's `rewriteUrl` throws or gives no string (Fastify then ends the request). */
function rewritten (rewrite: UrlRewrite, request: IncomingMessage): string | null {
  try {
    const url = rewrite(request)
    return typeof url === 'string' ? url : null
  } catch {
    return null
  }
}

// An absolute-form request target (`GET http://host/websocket HTTP/1.1`), whose path the router matches: http or
// https, a host, no fragment, a URL that parses.
const absoluteForm = /^https?:\/\/[^/?#]+/i

function absolutePath (url: string): string | null {
  const authority = absoluteForm.exec(url)
  if (authority === null || url.includes('#') || !URL.canParse(url)) return null
  const rest = url.slice(authority[0].length)
  return rest.startsWith('/') ? rest : `/${rest}`
}

function cut (text: string, delimiter: string): string {
  const at = text.indexOf(delimiter)
  return at === -1 ? text : text.slice(0, at)
}
