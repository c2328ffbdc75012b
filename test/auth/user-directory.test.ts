// The embedded user directory (lib/auth/user-directory.ts): argon2id hashes at the cost it is given, case-insensitive
// emails, unknown emails checked against a decoy, and TOTP codes accepted once. Its users are hashed at the test cost
// (`testHashing`), but for the test of the default cost.
import t from 'tap'
import argon2 from 'argon2'
import { TOTP } from 'otpauth'
import { otpKey } from '../../lib/auth/totp.js'
import { MemoryOtpSteps } from '../../lib/stores/otp-steps/memory.js'
import { UserDirectory, checkUsers } from '../../lib/auth/user-directory.js'
import { testHashing } from '../helpers.js'

const otpSecret = 'JBSWY3DPEHPK3PXP'

async function directory () {
  const users = new UserDirectory({ passwordHashing: testHashing })
  const carol = await users.add({ email: ' Carol@Example.com ', password: 'c4r0l!', role: 'editor' })
  const dave = await users.add({ email: 'dave@example.com', password: 'd4v3!', admin: true, otpSecret })
  return { users, carol, dave }
}

t.test('UserDirectory: add resolves a fresh identity with defaults', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  const plain = await users.add({ email: 'plain@example.com', password: 'p' })
  t.match(plain, { user: /^[0-9a-f-]{36}$/, role: null, admin: false })
  const other = await users.add({ email: 'other@example.com', password: 'p', role: 'r', admin: true })
  t.match(other, { role: 'r', admin: true })
  t.not(other.user, plain.user)
  t.equal(users.size, 2)
})

t.test('UserDirectory: the right password resolves the identity', async (t) => {
  const { users, carol } = await directory()
  t.same(await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!' }), carol)
  t.same(carol, { user: carol.user, role: 'editor', admin: false })
})

t.test('UserDirectory: a wrong password resolves null', async (t) => {
  const { users } = await directory()
  t.equal(await users.verifyCredentials({ email: 'carol@example.com', password: 'wrong' }), null)
})

t.test('UserDirectory: an unknown email resolves null', async (t) => {
  const { users } = await directory()
  t.equal(await users.verifyCredentials({ email: 'nobody@example.com', password: 'c4r0l!' }), null)
  t.equal(await users.verifyCredentials({ email: 'nobody-else@example.com', password: 'x' }), null, 'twice: the decoy hash is reused')
})

t.test('UserDirectory: the first unknown email costs what a wrong password does: the decoy is hashed as users are added', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  await users.add({ email: 'carol@example.com', password: 'c4r0l!' })
  const hashes = t.capture(argon2, 'hash', argon2.hash)
  const verifies = t.capture(argon2, 'verify', argon2.verify)
  t.equal(await users.verifyCredentials({ email: 'nobody@example.com', password: 'c4r0l!' }), null)
  t.equal(await users.verifyCredentials({ email: 'carol@example.com', password: 'wrong' }), null)
  t.equal(hashes.calls.length, 0, 'no hash in either check')
  t.equal(verifies.calls.length, 2, 'one verify each')
})

t.test('UserDirectory: a directory without users makes its decoy at the first check', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  const hashes = t.capture(argon2, 'hash', argon2.hash)
  t.equal(await users.verifyCredentials({ email: 'nobody@example.com', password: 'p' }), null)
  t.equal(hashes.calls.length, 1)
})

t.test('UserDirectory: emails are case-insensitive and trimmed', async (t) => {
  const { users, carol } = await directory()
  t.same(await users.verifyCredentials({ email: '  CAROL@EXAMPLE.COM', password: 'c4r0l!' }), carol)
  t.equal(users.emailOf(carol.user), 'carol@example.com')
  t.equal(users.emailOf('someone-else'), null)
})

t.test('UserDirectory: an otp is required when the user has an otpSecret', async (t) => {
  const { users, dave } = await directory()
  const now = TOTP.generate({ secret: otpKey(otpSecret) })
  const wrong = String((Number(now) + 500_000) % 1_000_000).padStart(6, '0')
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!' }), null, 'missing')
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: wrong }), null, 'wrong')
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'wrong', otp: now }), null, 'right otp, wrong password')
  t.same(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: now }), dave, 'right')
  t.same(dave, { user: dave.user, role: null, admin: true })
})

t.test('UserDirectory: an otp is accepted once; a wrong password does not use it up', async (t) => {
  const claimed: [string, number][] = []
  const memory = new MemoryOtpSteps()
  const users = new UserDirectory({ passwordHashing: testHashing })
  users.useOtpSteps({ claim: (user, step, nonce) => { claimed.push([user, step]); return memory.claim(user, step, nonce) }, giveBack: (user, step, nonce) => memory.giveBack(user, step, nonce) })
  const dave = await users.add({ email: 'dave@example.com', password: 'd4v3!', otpSecret })
  const now = TOTP.generate({ secret: otpKey(otpSecret) })
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'wrong', otp: now }), null)
  t.same(claimed, [], 'the code is claimed only once the password holds')
  t.same(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: now }), dave)
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: now }), null, 'replayed')
  t.equal(claimed.length, 2)
})

t.test('UserDirectory: a code whose login then failed (the check\'s signal aborted) is given back, once', async (t) => {
  const memory = new MemoryOtpSteps()
  let givingBackFails = false
  const users = new UserDirectory({ passwordHashing: testHashing })
  users.useOtpSteps({
    claim: (user, step, nonce) => memory.claim(user, step, nonce),
    giveBack: (user, step, nonce) => givingBackFails ? Promise.reject(new Error('redis down')) : memory.giveBack(user, step, nonce)
  })
  const dave = await users.add({ email: 'dave@example.com', password: 'd4v3!', otpSecret })
  const credential = { email: 'dave@example.com', password: 'd4v3!', otp: TOTP.generate({ secret: otpKey(otpSecret) }) }
  const failed = new AbortController()
  t.same(await users.verifyCredentials(credential, { signal: failed.signal }), dave)
  failed.abort()
  await new Promise(resolve => setImmediate(resolve))
  const succeeded = new AbortController()
  t.same(await users.verifyCredentials(credential, { signal: succeeded.signal }), dave, 'given back: the retry works')
  t.equal(await users.verifyCredentials(credential), null, 'used up by the login that went through')
  // A store that cannot give it back leaves it used up, and nothing throws.
  givingBackFails = true
  const again = new AbortController()
  t.same(await users.verifyCredentials({ ...credential, otp: TOTP.generate({ secret: otpKey(otpSecret), timestamp: Date.now() + 30_000 }) }, { signal: again.signal }), dave)
  again.abort()
  await new Promise(resolve => setImmediate(resolve))
})

t.test('UserDirectory: a claim that landed but whose answer never came is given back when its login fails', async (t) => {
  const memory = new MemoryOtpSteps()
  let answerLost = true
  const users = new UserDirectory({ passwordHashing: testHashing })
  users.useOtpSteps({
    claim: async (user, step, nonce) => {
      const claimed = await memory.claim(user, step, nonce)
      if (answerLost) throw new Error('the connection dropped before the answer')
      return claimed
    },
    giveBack: (user, step, nonce) => memory.giveBack(user, step, nonce)
  })
  const dave = await users.add({ email: 'dave@example.com', password: 'd4v3!', otpSecret })
  const credential = { email: 'dave@example.com', password: 'd4v3!', otp: TOTP.generate({ secret: otpKey(otpSecret) }) }
  const failed = new AbortController()
  await t.rejects(users.verifyCredentials(credential, { signal: failed.signal }))
  failed.abort()
  await new Promise(resolve => setImmediate(resolve))
  answerLost = false
  t.same(await users.verifyCredentials(credential, { signal: new AbortController().signal }), dave, 'the retry with the code works')
})

t.test('UserDirectory: a record of used steps that fails makes the check fail (SERVICE_UNAVAILABLE upstream)', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  users.useOtpSteps({ claim: () => Promise.reject(new Error('redis down')), giveBack: () => Promise.resolve() })
  await users.add({ email: 'dave@example.com', password: 'd4v3!', otpSecret })
  await t.rejects(users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: TOTP.generate({ secret: otpKey(otpSecret) }) }))
})

t.test('UserDirectory: an otp is ignored for a user without otpSecret', async (t) => {
  const { users, carol } = await directory()
  t.same(await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!', otp: '000000' }), carol)
})

t.test('UserDirectory: a bad otpSecret is refused when the user is added', async (t) => {
  await t.rejects(new UserDirectory({ passwordHashing: testHashing }).add({ email: 'e@example.com', password: 'p', otpSecret: 'not base32!' }),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: the user\'s otpSecret must be a base32 TOTP secret of 16 characters or more' })
})

t.test('UserDirectory: a blank or short otpSecret is refused when the user is added, never read as no OTP', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  // A blank secret gave an empty key, a short one a key of a few bits: the password alone computed the code.
  for (const secret of ['', ' ', 'A', 'JBSWY3DPEHPK3PX']) {
    await t.rejects(users.add({ email: 'e@example.com', password: 'p', otpSecret: secret }),
      { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: the user\'s otpSecret must be a base32 TOTP secret of 16 characters or more' },
      JSON.stringify(secret))
  }
  t.equal(users.size, 0, 'none of them added')
  // null, as the plugin reads its options, is unset: a user without OTP.
  await users.add({ email: 'e@example.com', password: 'p', otpSecret: null as never })
  t.ok(await users.verifyCredentials({ email: 'e@example.com', password: 'p' }))
})

t.test('UserDirectory: the spellings of one email (decomposed, fullwidth) are one user, added once and logged in by any', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  const jose = await users.add({ email: 'jos\u00e9@example.com', password: 'jose-pw' })
  for (const spelling of ['jose\u0301@example.com', '\uff4aos\u00e9@example.com', ' JOSE\u0301@EXAMPLE.COM']) {
    await t.rejects(users.add({ email: spelling, password: 'other' }),
      { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: jos\u00e9@example.com is already in the directory: add each user once' }, JSON.stringify(spelling))
    t.same(await users.verifyCredentials({ email: spelling, password: 'jose-pw' }), jose, `${JSON.stringify(spelling)} logs in`)
  }
  t.equal(users.size, 1)
  t.throws(() => checkUsers([{ email: 'jos\u00e9@example.com', password: 'p' }, { email: '\uff4aose\u0301@example.com', password: 'q' }], 'users'),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: users[1] has the email of users[0]: list each user once' })
})

t.test('UserDirectory: a user\'s default id is the one it had before emails were normalised (sessions, revocations agree)', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  // sha256 of `fastify-realtime:` and the email trimmed and lowercased only, as ids were derived before NFKC: a
  // revokeUser by the id must reach the sessions made before the upgrade, and old and new processes must agree.
  const jose = await users.add({ email: ' Jose\u0301@Example.com ', password: 'p' })
  t.equal(jose.user, 'dcf32a7b-f899-d008-7766-334cf3ce9762', 'decomposed')
  const fullwidth = await users.add({ email: '\uff2aohn@example.com', password: 'p' })
  t.equal(fullwidth.user, 'ccf82477-4d41-42a8-3479-1e1735128b6b', 'fullwidth')
  t.same(await users.verifyCredentials({ email: 'jos\u00e9@example.com', password: 'p' }), jose, 'looked up by its one spelling')
  t.same(await users.verifyCredentials({ email: 'john@example.com', password: 'p' }), fullwidth)
  t.equal(users.emailOf(jose.user!), 'jos\u00e9@example.com')
})

t.test('UserDirectory: a user no login could name (an email over 254 once normalised, a password over 1024) fails boot', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  const longPassword = { email: 'long@example.com', password: 'p'.repeat(1025) }
  // 34 characters, 255 once normalised: NFKC makes 18 of each U+FDFA.
  const longEmail = { email: `${'a'.repeat(9)}${'\ufdfa'.repeat(13)}@example.com`, password: 'p' }
  t.equal(longEmail.email.normalize('NFKC').length, 255)
  const list = [{ email: 'ok@example.com', password: 'p' }]
  t.throws(() => checkUsers([...list, longPassword], 'users'),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: users[1]\'s password must be at most 1024 characters: no login could carry it' })
  t.throws(() => checkUsers([...list, longEmail], 'USERS_FILE'),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: USERS_FILE[1]\'s email must be at most 254 characters once normalised: no login could name it' })
  await t.rejects(users.add(longPassword), { message: 'Invalid configuration: the user\'s password must be at most 1024 characters: no login could carry it' })
  await t.rejects(users.add(longEmail), { message: 'Invalid configuration: the user\'s email must be at most 254 characters once normalised: no login could name it' })
  t.equal(users.size, 0)
  // At the bounds: added, and logged in.
  const atBounds = { email: `${'a'.repeat(242)}@example.com`, password: 'p'.repeat(1024) }
  checkUsers([atBounds], 'users')
  const added = await users.add(atBounds)
  t.same(await users.verifyCredentials(atBounds), added)
})

t.test('UserDirectory: an email or an id already there is refused, even added at the same time', async (t) => {
  const users = new UserDirectory({ passwordHashing: testHashing })
  const alice = await users.add({ id: 'user-1', email: 'alice@example.com', password: 'alice-pw', role: 'editor' })
  await t.rejects(users.add({ email: ' ALICE@example.com', password: 'other', admin: true }),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: alice@example.com is already in the directory: add each user once' })
  await t.rejects(users.add({ id: 'user-1', email: 'mallory@example.com', password: 'mallory-pw' }),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: mallory@example.com has the id of alice@example.com: give each user an id of their own' })
  // An id given that is another user's derived one.
  const bob = await users.add({ email: 'bob@example.com', password: 'p' })
  await t.rejects(users.add({ id: bob.user!, email: 'eve@example.com', password: 'p' }), { message: /eve@example.com has the id of bob@example.com/ })
  t.same(await users.verifyCredentials({ email: 'alice@example.com', password: 'alice-pw' }), alice, 'alice kept her password and role')
  t.equal(await users.verifyCredentials({ email: 'alice@example.com', password: 'other' }), null)
  t.equal(users.emailOf('user-1'), 'alice@example.com')
  t.equal(users.emailOf('nobody'), null)

  // Checked before the hash: of two adds at once, one is refused.
  const both = await Promise.allSettled([users.add({ email: 'carol@example.com', password: 'one' }), users.add({ email: 'carol@example.com', password: 'two' })])
  t.same(both.map(added => added.status), ['fulfilled', 'rejected'])
  t.ok(await users.verifyCredentials({ email: 'carol@example.com', password: 'one' }), 'the first one stays')
  t.equal(users.size, 3)
  for (const id of ['', 7]) {
    await t.rejects(users.add({ id: id as never, email: 'dan@example.com', password: 'p' }),
      { message: 'Invalid configuration: the user\'s id must be a non-empty string' }, JSON.stringify(id))
  }
})

t.test('UserDirectory: verifyCredentials returns a copy of the identity', async (t) => {
  const { users, carol } = await directory()
  const first = (await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!' }))!
  first.admin = true
  t.same(await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!' }), carol)
})

t.test('UserDirectory: passwords are hashed with argon2id at OWASP\'s cost unless told otherwise', async (t) => {
  const hashes = t.capture(argon2, 'hash', argon2.hash)
  const owasp = new UserDirectory()
  await owasp.add({ email: 'a@example.com', password: 'p' })
  await owasp.verifyCredentials({ email: 'nobody@example.com', password: 'p' })
  const cheap = new UserDirectory({ passwordHashing: { memoryCost: 8, timeCost: 1 } })
  await cheap.add({ email: 'b@example.com', password: 'p' })
  const encoded = await Promise.all(hashes.calls.map(call => (call as { returned: Promise<string> }).returned))
  t.equal(encoded.length, 4, 'each directory\'s decoy, as its first user is added, and that user')
  const owaspCost = /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/
  const cheapCost = /^\$argon2id\$v=19\$m=8,p=1,t=1\$/
  t.match(encoded, [owaspCost, owaspCost, cheapCost, cheapCost],
    '19 MiB, 1 lane, 2 passes by default, the decoy too; the cost given otherwise, the decoy\'s too')
  t.match(await cheap.verifyCredentials({ email: 'b@example.com', password: 'p' }), { role: null, admin: false }, 'and checks with it')
})

t.test('UserDirectory: a cost argon2 cannot run is refused when the directory is made', async (t) => {
  for (const [passwordHashing, message] of [
    [{ memoryCost: 7 }, 'passwordHashing.memoryCost must be an integer of at least 8 (got 7)'],
    [{ memoryCost: 1024.5 }, 'passwordHashing.memoryCost must be an integer of at least 8 (got 1024.5)'],
    [{ timeCost: 0 }, 'passwordHashing.timeCost must be an integer of at least 1 (got 0)']
  ] as const) {
    t.throws(() => new UserDirectory({ passwordHashing }), { code: 'FST_REALTIME_INVALID_CONFIG', message: `Invalid configuration: ${message}` })
  }
})
