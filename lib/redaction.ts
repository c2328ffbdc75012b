// Credentials never reach a log line, the logs stream or an error message: the one place that knows what to hide.
import pino from 'pino'

/**
 * Names whose value is hidden: as a field, a query or form pair, a header or a JSON member. A refresh, session or auth
 * token may carry a prefix: the plugin's cookies are `directus_refresh_token` and `directus_session_token`, and APIs
 * take `x-auth-token` or OAuth 1's `oauth_token`; OpenID Connect's `id_token` is hidden by its name, whatever its form.
 * A session's id names the session, and the plugin's own are not credentials: `sessionId` is kept.
 */
const names = 'access[_-]?token|[\\w-]*(?:refresh|session|auth)[_-]?token|id[_-]?token|otp|authorization|proxy-authorization|cookies?|set-cookie|token|rawPacket'
// Words that make any name holding them a credential's name, camelCase or not: `otpSecret`, `new_password`,
// `x-api-key` (where `my_access_token_count` only holds a credential's name).
const credentialWords = 'pass(?:word|wd|phrase)|secret|api[_-]?key|private[_-]?key'
const secretNames = new RegExp(`^(?:${names})$|${credentialWords}`, 'i')
// The parts of a name as qs reads `a[]`, `a[0]`, `a[b]` and `a.b`, as clients write arrays and objects in a query,
// and without the spaces a client left around it (`access_token%20=`).
const nameParts = /[[\].\s]+/
// Fields holding headers as a list of names and values in turn: Node's `rawHeaders` and `rawTrailers`, undici's and
// `http.request`'s `headers` given as an array (a list of pairs for `fetch`); not `allowedHeaders`, a list of names.
const headerLists = /^(?:raw)?(?:headers|trailers)$/i
const headerName = /^[!#$%&'*+.^`|~\w-]+$/
const redacted = '[redacted]'

// Text with none of these holds nothing to hide: most strings, and most lines, stop at this one test (a
// percent-encoded character, or a JSON escape, may spell a credential's name). No alternative is shorter than 3
// characters, which lets the scan skip ahead (3 times faster than with `%` or `//`); words are spelled out
// (`api[_-]?key` scans slower), and the two escapes share one alternative (as two, they scan slower).
const suspect = /passw|passph|token|secret|apikey|api_key|api-key|privatekey|private_key|private-key|otp|authoriz|bearer|cookie|rawpacket|eyJ|:\/\/|valid JSON|buffer|(?:%|\\u00)[0-9a-f]{2}/i
// Each rule below starts only at a boundary and consumes only what it hides, so no credential sits inside what
// another match skipped, and a long or hostile string costs linear time.
// `name=` of a `name=value` pair (query strings, form bodies, cookies, `state=access_token=...`, a URL's fragment as an
// OAuth redirect carries tokens: `#access_token=...`); its value ends at `&`, `#`, `"` or a space.
const pairNames = /(?<![^?&;,\s"'=#])([^=&#?;,\s"']*)=/g
const pairValue = /[^&#\s"]*/y
// `name: value` and `"name": value` (header lines, JSON); an unquoted value ends at the end of its line, `,` or `}`.
// A name holding a credential word is taken whole after one look ahead (no backtracking into it for each word).
const namedValue = String.raw`(?:"(?:[^"\\]|\\.)*"?|[^\r\n,}]*)`
const namedValues = new RegExp(String.raw`(?<![\w-])(\\?"?(?:${names}|(?=[\w-]*?(?:${credentialWords}))[\w-]+)\\?"?[ \t]*:[ \t]*)${namedValue}`, 'gi')
// A JSON member whose name is spelled with escapes (`"access\u005ftoken":`, in JSON text or JSON quoted in JSON): its
// name compares decoded, as JSON.parse reads it. The look ahead keeps other members to one scan of their name.
const escapedNames = /(?<![\w-])\\?"(?=[\w\\-]*\\u)((?:[\w-]|\\\\?u[0-9a-f]{4})+)\\?"[ \t]*:[ \t]*/gi
const escapedValue = new RegExp(namedValue, 'y')
// A browser's WebSocket cannot set headers, so some clients carry the token in the subprotocol list instead:
// `access_token.<token>`, Kubernetes' `base64url.bearer.authorization.k8s.io.<token>`, `Authorization, <token>`. The
// plugin reads no credential there (it picks graphql-transport-ws, or the first offered), so none is kept there.
const protocolHeader = /^sec-websocket-protocol$/i
const protocolLists = /(?<![\w-])(sec-websocket-protocol\\?"?[ \t]*:[ \t]*\\?"?)([^\r\n"\\]*)/gi
// A JWT (an access token) wherever it is, whatever it is called.
const jwts = /(?<![\w-])eyJ[\w-]*\.[\w-]*\.[\w-]*/g
// The token of `Bearer <token>` (an `authorization` header's value, alone in `rawHeaders`), whatever its form.
const bearerTokens = /(?<![\w-])(bearer[ \t]+)[\w.~+/-]+=*/gi
// The password of a URL's user info (`redis://user:password@host`), read as WHATWG URL (and so ioredis) reads it: the
// user info ends at the last `@` before the host's end (`/`, `?`, `#`), and its first `:` starts the password
// (`redis://:p@ss@host`). The user stops at its first `:` and the password backs up only within its own run: linear.
const userInfo = /(\/\/[^\s/?#:]*:)[^\s/?#]*@/g
// A part of a path, a name or a value (between `/`, `?`, `=`, `&`, ...) still percent-encoded after the last round of
// decoding: whatever is outside such parts is plain text the rules above have read.
const stillEncoded = /(?<![^\s&#?="'/])[^\s&#?="'/]*%[0-9a-f]{2}[^\s&#?="'/]*/gi
// V8 quotes up to 20 characters of a JSON.parse failure's source ("... is not valid JSON"): a body's password.
const jsonSources = /, (?:\.\.\.)?"[\s\S]{0,40}"(?:\.\.\.)? is not valid JSON/g

/** A credential's name, whole or by one of its parts: `access_token[]` and `user[access_token]` are `access_token`'s. */
function isSecretName (name: string): boolean {
  return secretNames.test(name) || (nameParts.test(name) && name.split(nameParts).some(part => secretNames.test(part)))
}

/**
 * Hides the value (`value`, sticky) after each name `named` finds (its first group) that is a credential's once read
 * as its parser reads it.
 */
function hideNamed (text: string, named: RegExp, value: RegExp, read: (name: string) => string): string {
  let kept = ''
  let copied = 0
  named.lastIndex = 0
  for (let match = named.exec(text); match !== null; match = named.exec(text)) {
    if (!isSecretName(read(match[1]))) continue
    value.lastIndex = named.lastIndex
    value.test(text)
    kept += `${text.slice(copied, named.lastIndex)}${redacted}`
    copied = named.lastIndex = value.lastIndex
  }
  return kept + text.slice(copied)
}

/** A pair's name as the query parser decodes it: `access%5Ftoken` is `access_token` too. */
function readPairName (name: string): string {
  try { return decodeURIComponent(name.replace(/\+/g, ' ')) } catch { return name }
}

/** A member's name as JSON.parse reads it: `access\u005ftoken` is `access_token`. */
function readMemberName (name: string): string {
  return name.replace(/\\\\?u(....)/g, (_, code: string) => String.fromCharCode(parseInt(code, 16)))
}

/** A subprotocol entry's dotted part, or a whole entry, that names a credential (or says what one is). */
function isCredentialPart (part: string): boolean {
  return secretNames.test(part) || /^bearer$/i.test(part)
}

/** A subprotocol list with what follows a credential-named part hidden: the rest of its entry, or the next entry. */
function hideProtocols (list: string): string {
  let afterName = false
  return list.replace(/[^,\s]+/g, entry => {
    const parts = entry.split('.')
    const named = parts.findIndex(isCredentialPart)
    const hidden = afterName
      ? redacted
      : named === -1 || named === parts.length - 1 ? entry : `${parts.slice(0, named + 1).join('.')}.${redacted}`
    afterName = named === parts.length - 1
    return hidden
  })
}

/**
 * Percent-escapes decoded. Where they are not UTF-8 (`decodeURIComponent` throws on a stray `%E0`), the ASCII ones
 * only, in one native pass: the others (and `%u`) are escaped first, so `unescape` gives them back as they were.
 */
function decodeEscapes (text: string): string {
  try { return decodeURIComponent(text) } catch { return unescape(text.replace(/%(?=[89a-fu])/gi, '%25')) }
}

/**
 * The credentials in text cut out, and again in its decoded form for `decodings` more rounds: a redirect URL
 * (`?next=%2Fwebsocket%3Faccess_token%3D...`) carries a credential encoded inside a value, once per redirect it went
 * through. The decoded form is returned only if it hid something more; it is decoded from the redacted text, so an
 * encoded `&` inside a hidden password does not end it early. Each round is one pass, so the rounds are bounded: what
 * is still encoded after the last one is hidden, as it may hide a credential one round deeper.
 */
function redactEncoded (text: string, decodings: number): string {
  if (!suspect.test(text)) return text
  const pairsHidden = hideNamed(text, pairNames, pairValue, readPairName)
  const hidden = hideNamed(pairsHidden, escapedNames, escapedValue, readMemberName)
    .replace(namedValues, `$1${redacted}`)
    .replace(protocolLists, (_, name: string, list: string) => `${name}${hideProtocols(list)}`)
    .replace(jwts, redacted)
    .replace(bearerTokens, `$1${redacted}`)
    .replace(userInfo, `$1${redacted}@`)
    .replace(jsonSources, `, "${redacted}" is not valid JSON`)
  const decoded = decodeEscapes(hidden)
  if (decoded === hidden) return hidden
  if (decodings === 0) return hidden.replace(stillEncoded, redacted)
  const deeper = redactEncoded(decoded, decodings - 1)
  return deeper === decoded ? hidden : deeper
}

/** Text (a URL, a message, a stack, a raw request) with the credentials it carries cut out. */
export function redactText (text: string): string {
  return redactEncoded(text, 5)
}

/** A URL is text like any other: `?access_token=` and the rest go the same way. */
export const redactUrl = redactText

/** Raw bytes (a Buffer, or one pino already wrote as JSON) may hold a whole request: they are never shown. */
function isRawBytes (value: object): boolean {
  const bytes = value as { type?: unknown, data?: unknown }
  return ArrayBuffer.isView(value) || (bytes.type === 'Buffer' && Array.isArray(bytes.data))
}

/** Names and values in turn, the names header names: a list of strings that holds anything else is an ordinary list. */
function isHeaderList (list: unknown[]): list is string[] {
  return list.length % 2 === 0 && list.every((item, index) => typeof item === 'string' && (index % 2 === 1 || headerName.test(item)))
}

/**
 * A field's value, or a header's: hidden whole under a credential's name, whatever its form (`Basic ...`, a key);
 * a subprotocol list with its credentials cut out.
 */
function redactNamed (name: string, value: unknown, depth: number, ancestors: Set<object>): unknown {
  if (isSecretName(name)) return redacted
  if (typeof value === 'string' && protocolHeader.test(name)) return hideProtocols(redactText(value))
  return redactValue(value, depth + 1, ancestors, headerLists.test(name))
}

function redactValue (value: unknown, depth: number, ancestors: Set<object>, inHeaders = false): unknown {
  if (typeof value === 'string') return redactText(value)
  if (typeof value !== 'object' || value === null) return value
  if (depth > 32 || isRawBytes(value)) return redacted // deeper than any log object worth streaming
  if (ancestors.has(value)) return '[Circular]'
  const { toJSON } = value as { toJSON?: unknown }
  // What pino would write (a Date's string, a URL's href) is what gets redacted.
  if (typeof toJSON === 'function') return redactValue(toJSON.call(value), depth + 1, ancestors, inHeaders)
  ancestors.add(value)
  let copy: unknown
  if (Array.isArray(value)) {
    copy = inHeaders && isHeaderList(value)
      ? value.map((item, index) => index % 2 === 0 ? redactText(item) : redactNamed(value[index - 1], item, depth, ancestors))
      : value.map(item => redactValue(item, depth + 1, ancestors, inHeaders))
  } else {
    // No prototype: a "__proto__" key stays a plain field.
    const fields: Record<string, unknown> = Object.create(null)
    for (const [key, field] of Object.entries(value)) {
      fields[key] = redactNamed(key, field, depth, ancestors)
    }
    copy = fields
  }
  ancestors.delete(value)
  return copy
}

/**
 * A copy of a log object with credentials hidden at any depth: credential-named fields and raw bytes become
 * `[redacted]`, and credentials inside strings (query values, headers, JSON members, JWTs) are cut out.
 */
export function redactLogObject (value: unknown): unknown {
  return redactValue(value, 0, new Set())
}

/** A pino line with its credentials hidden; a line with nothing suspect is returned as it is, unparsed. */
export function redactLogLine (line: string): string {
  if (!suspect.test(line)) return line
  let entry: unknown
  try {
    entry = JSON.parse(line)
  } catch {
    return redactText(line) // not a pino line: its text, then
  }
  return `${JSON.stringify(redactLogObject(entry))}\n`
}

/**
 * Fastify logger serializers that keep credentials out of request and error logs:
 * `Fastify({ logger: { serializers: realtimeSerializers } })`.
 */
export const realtimeSerializers = {
  req (request: { method: string, url: string, host?: string, ip?: string }) {
    return { method: request.method, url: redactUrl(request.url), host: request.host, remoteAddress: request.ip }
  },
  /** pino's own error serializer, then redacted: Fastify's client errors carry the raw request (`rawPacket`). */
  err (err: Error) {
    return redactLogObject(pino.stdSerializers.err(err)) as { type: string, message: string, stack: string, [key: string]: unknown }
  }
}
