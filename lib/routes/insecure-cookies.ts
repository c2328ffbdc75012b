// A login cookie without `Secure` set on a request over HTTPS (a proxy's X-Forwarded-Proto with trustProxy). The setting
// alone decides the attribute, as Directus's does, never the request: the plugin only says so, once per cookie, on the
// app's logger, naming the setting, so that a deployment behind TLS does not send its cookies in clear unawares.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Config, CookieConfig } from '../config.js'

/** Called for each cookie a login or refresh sets: warns the first time one is not Secure on an HTTPS request. */
export function insecureCookieWarning (log: FastifyBaseLogger, cookies: Config['cookies']) {
  const warned = new Set<CookieConfig>()
  return (request: FastifyRequest, cookie: CookieConfig): void => {
    if (cookie.secure || warned.has(cookie) || request.protocol !== 'https') return
    warned.add(cookie)
    const [variable, option] = cookie === cookies.session
      ? ['SESSION_COOKIE_SECURE', 'cookies.session.secure']
      : ['REFRESH_TOKEN_COOKIE_SECURE', 'cookies.refresh.secure']
    log.warn(`the ${cookie.name} cookie is set without Secure on a request over HTTPS: set ${variable}=true (${option}), or a browser sends it over plain HTTP too`)
  }
}
