// The one spelling of an email (lib/auth/emails.ts): a fixed point, so that the spelling the authenticator hands the
// directory is the one the directory keeps, and a user whose email changes on a second pass can still log in.
import t from 'tap'
import { normalizeEmail } from '../../lib/auth/emails.js'
import { build } from '../helpers.js'

t.test('normalizeEmail is a fixed point: every character NFKC or case mapping changes, before every combining mark', async t => {
  const changed: string[] = []
  for (let point = 0; point <= 0x10ffff; point++) {
    if (point >= 0xd800 && point <= 0xdfff) continue
    const character = String.fromCodePoint(point)
    if (character.normalize('NFKC') !== character || character.toLowerCase() !== character) changed.push(character)
  }
  const marks = Array.from({ length: 0x70 }, (_, i) => String.fromCodePoint(0x300 + i))
  const moving: string[] = []
  for (const character of changed) {
    for (const mark of marks) {
      const email = `a${character}${mark}@example.com`
      const once = normalizeEmail(email)
      if (normalizeEmail(once) !== once) moving.push(JSON.stringify(email))
    }
  }
  t.ok(changed.length > 5000, `${changed.length} characters, ${changed.length * marks.length} pairs`)
  t.same(moving.slice(0, 20), [], `${moving.length} spellings change on a second pass`)
})

t.test('normalizeEmail: a sequence that composes only once lowercased is composed', async t => {
  // T + U+0308 lowercases to t + U+0308, which NFKC composes to ẗ (U+1E97): a second pass would change it.
  t.equal(normalizeEmail(' T\u0308om@Example.com'), '\u1e97om@example.com')
  t.equal(normalizeEmail('\uff34\u0308om@example.com'), '\u1e97om@example.com', 'fullwidth, then lowercased, then composed')
})

t.test('a user whose email composes only once lowercased logs in, in every spelling', async t => {
  const tom = { email: 'T\u0308om@example.com', password: 'pw-tom-123456' }
  const { app } = await build(t, { users: [tom], authRoutes: true }, { logger: false })
  for (const email of [tom.email, 't\u0308om@example.com', '\u1e97om@example.com', ' \uff34\u0308OM@EXAMPLE.COM']) {
    const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: tom.password } })
    t.equal(response.statusCode, 200, JSON.stringify(email))
  }
})
