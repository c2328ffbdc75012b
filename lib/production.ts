// Whether the process runs in production, where what is only warned about elsewhere fails boot. The plugin and the
// reference server ask this one function, so that they never disagree.

/**
 * `NODE_ENV` of `env` is `production`, whatever its case and around spaces: `Production` in a compose file or
 * `production ` with a stray space is no less production, and would boot with a guessable SECRET. Under an `env` that
 * leaves NODE_ENV out, the process's own: an app passing its settings alone is no less in production.
 */
export function isProduction (env: Readonly<Record<string, string | undefined>> | undefined): boolean {
  return (env?.NODE_ENV ?? process.env.NODE_ENV)?.trim().toLowerCase() === 'production'
}
