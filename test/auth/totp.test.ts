// Time-based one-time codes (lib/auth/totp.ts, RFC 6238) and the record of the steps each user has used
// (lib/stores/otp-steps/).
import t from 'tap'
import { TOTP } from 'otpauth'
import { otpKey, totpStep } from '../../lib/auth/totp.js'
import { fakeClock } from '../clock.js'

const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' // '12345678901234567890', RFC 6238's SHA-1 key
const rfcKey = otpKey(rfcSecret)

t.test('totp: RFC 6238 test vectors (SHA-1, 6 digits) name their step', async (t) => {
  t.equal(Buffer.from(rfcKey.bytes).toString(), '12345678901234567890')
  // RFC 6238 appendix B, last six digits of the 8-digit values.
  const vectors: [number, string][] = [
    [59, '287082'],
    [1111111109, '081804'],
    [1111111111, '050471'],
    [1234567890, '005924'],
    [2000000000, '279037'],
    [20000000000, '353130']
  ]
  for (const [seconds, code] of vectors) {
    t.equal(totpStep(rfcKey, code, seconds * 1000), Math.floor(seconds / 30), `T=${seconds}`)
  }
})

t.test('totp: base32 is case-insensitive and ignores spaces and padding', async (t) => {
  t.same(otpKey('gezd gnbv gy3t qojq gezd gnbv gy3t qojq').bytes, rfcKey.bytes)
  t.equal(Buffer.from(otpKey('MZXW6YTBOJRGC6TROU======').bytes).toString(), 'foobarbazqu')
  t.equal(Buffer.from(otpKey('MZXW6YTBOJRGC6TROV4A====').bytes).toString(), 'foobarbazqux')
})

t.test('totp: bad base32 throws', async (t) => {
  t.throws(() => otpKey('GEZDGNBV1'), { name: 'TypeError', message: 'OTP secret must be base32' })
  t.throws(() => otpKey('GEZD-GNBV'), TypeError)
})

t.test('totp: a key under 10 bytes throws: a blank secret\'s key is empty, its codes anyone\'s', async (t) => {
  const tooShort = { name: 'TypeError', message: 'OTP secret must be a key of 10 bytes or more (16 base32 characters)' }
  for (const secret of ['', ' ', 'A', '====', 'AAAAAAAAAAAAAAA']) t.throws(() => otpKey(secret), tooShort, JSON.stringify(secret))
  t.equal(otpKey('AAAAAAAAAAAAAAAA').bytes.length, 10, '16 characters: 10 bytes')
})

t.test('totp: accepts the neighbouring steps and nothing further, and says which step the code is', async (t) => {
  const code = '081804' // step 37037036: T = 1111111080 .. 1111111109 s
  const step = 37037036
  const start = 1111111080_000
  t.equal(totpStep(rfcKey, code, start), step, 'same step, first ms')
  t.equal(totpStep(rfcKey, code, start + 29_999), step, 'same step, last ms')
  t.equal(totpStep(rfcKey, code, start - 1), step, 'the clock one step behind')
  t.equal(totpStep(rfcKey, code, start - 30_000), step, 'the clock one step behind, first ms')
  t.equal(totpStep(rfcKey, code, start + 59_999), step, 'the clock one step ahead')
  t.equal(totpStep(rfcKey, code, start - 30_001), null, 'two steps behind')
  t.equal(totpStep(rfcKey, code, start + 60_000), null, 'two steps ahead')
})

t.test('totp: wrong codes, wrong lengths and other characters are refused', async (t) => {
  for (const code of ['287083', '28708', '2870820', '', '94287082', '28708x', '２８７０８２', 'éééééé']) {
    t.equal(totpStep(rfcKey, code, 59_000), null, JSON.stringify(code))
  }
})

t.test('totp: totpStep defaults to the current time', async (t) => {
  fakeClock(t, ['Date'], 1111111109_000) // the code below and the step are read at one time, not astride two steps
  t.equal(totpStep(rfcKey, TOTP.generate({ secret: rfcKey })), 37037036)
})

t.test('totp: the first step of the epoch has no earlier neighbour to check', async (t) => {
  t.equal(totpStep(rfcKey, TOTP.generate({ secret: rfcKey, timestamp: 0 }), 10_000), 0)
})
