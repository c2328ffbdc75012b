// Credentials never reach a log line, the logs stream or an error message: the one place that knows what to hide.
const secretKeys = /^(access_?token|refresh_?token|password|otp|authorization|cookie|set-cookie|secret|token)$/i
const redacted = '[redacted]'

/**
 * Hides `access_token` query values. Keys are compared decoded, as the query parser decodes them:
 * `access%5Ftoken` is `access_token` too.
 */
export function redactUrl (url: string): string {
  return url.replace(/([?&])([^=&#]*)=([^&#]*)/g, (pair, separator: string, key: string) => {
    let name = key
    try { name = decodeURIComponent(key.replace(/\+/g, ' ')) } catch {}
    return name.toLowerCase() === 'access_token' ? `${separator}${key}=${redacted}` : pair
  })
}

/** A copy of a log object with every credential-named field hidden and tokens cut out of URLs, at any depth. */
export function redactLogObject (value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.includes('=') ? redactUrl(value) : value
  if (typeof value !== 'object' || value === null) return value
  if (depth > 32) return redacted // deeper than any log object worth streaming
  if (Array.isArray(value)) return value.map(item => redactLogObject(item, depth + 1))
  // No prototype: a "__proto__" key stays a plain field.
  const copy: Record<string, unknown> = Object.create(null)
  for (const [key, field] of Object.entries(value)) {
    copy[key] = secretKeys.test(key) ? redacted : redactLogObject(field, depth + 1)
  }
  return copy
}

/**
 * Fastify logger serializers that keep credentials out of request logs:
 * `Fastify({ logger: { serializers: realtimeSerializers } })`.
 */
export const realtimeSerializers = {
  req (request: { method: string, url: string, host?: string, ip?: string }) {
    return { method: request.method, url: redactUrl(request.url), host: request.host, remoteAddress: request.ip }
  }
}
