// The longest email and password a login may carry, refused before they are counted, normalised or hashed: the HTTP
// routes (body-fields.ts) and the socket's auth message (messages.ts) apply the same bounds, in UTF-16 code units.

/** RFC 5321's longest forward path, 256 octets with the angle brackets: no mailbox is longer. */
export const maxEmailLength = 254

/**
 * Eight times the longest password OWASP's ASVS asks be accepted (128), past what any password manager generates; its
 * JSON body, every character escaped (`\uXXXX`), still fits the routes' 16 KiB body limit beside a full email.
 */
export const maxPasswordLength = 1024

/** The problem with a field over its bound, as both endpoints name it. */
export const tooLong = (name: string, max: number) => `"${name}" must be at most ${max} characters.`

/**
 * Whether a login's email and password, as sent, are strings within the bounds. The app's own route may hand
 * `login()` a body as the client wrote it (`login(request.body, request)`): one without them is refused as a wrong one.
 */
export const withinBounds = (given: { email: string, password: string }): boolean => {
  const { email, password } = (typeof given === 'object' && given !== null ? given : {}) as Partial<Record<'email' | 'password', unknown>>
  return typeof email === 'string' && typeof password === 'string' && email.length <= maxEmailLength && password.length <= maxPasswordLength
}
