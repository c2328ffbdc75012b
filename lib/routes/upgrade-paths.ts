// Whether an upgrade's URL names one of the plugin's websocket routes, as the app's router would match it: its query
// and (with `useSemicolonDelimiter`) parameters off, percent-decoded, and its options for trailing and duplicate
// slashes and case. The routes are static paths, so this is all their matching takes.

interface RouterOptions {
  ignoreTrailingSlash?: boolean
  ignoreDuplicateSlashes?: boolean
  caseSensitive?: boolean
  useSemicolonDelimiter?: boolean
}

/** `config`: the app's `initialConfig` (Fastify 5 has the router's options at the top and in `routerOptions`). */
export function upgradePaths (paths: ReadonlySet<string>, config: RouterOptions & { routerOptions?: RouterOptions }): (url: string) => boolean {
  const options = { ...config, ...config.routerOptions }
  const normalize = (path: string): string => {
    if (options.ignoreDuplicateSlashes) path = path.replace(/\/{2,}/g, '/')
    if (options.ignoreTrailingSlash && path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
    return options.caseSensitive === false ? path.toLowerCase() : path
  }
  const known = new Set([...paths].map(normalize))
  // Runs on every upgrade: cut by index, and decode only a path that has an escape (decodeURI leaves the rest as is).
  return (url) => {
    let path = cut(url, '?')
    if (options.useSemicolonDelimiter) path = cut(path, ';')
    if (path.includes('%')) {
      try {
        // As the router decodes it: reserved characters (`%40`, `%2F`) stay escaped.
        path = decodeURI(path)
      } catch {
        return false // no path the router matches
      }
    }
    return known.has(normalize(path))
  }
}

function cut (text: string, delimiter: string): string {
  const at = text.indexOf(delimiter)
  return at === -1 ? text : text.slice(0, at)
}
