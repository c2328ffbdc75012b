import t from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { Secret, TOTP } from 'otpauth'
import { admin, build, type Built } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const otpSecret = 'JBSWY3DPEHPK3PXP'
const user = { ...admin, otpSecret }
const step = 30_000
const code = (at: number) => TOTP.generate({ secret: Secret.fromBase32(otpSecret), timestamp: at })
function login (built: Built, otp: string) {
  return built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password, otp } })
}

t.test('replay after a Redis restart', async t => {
  const clock = FakeTimers.install({ now: (Math.floor(Date.now() / step) + 2.5) * step, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  const redis = await RedisServer.start(t)
  const a = await build(t, { users: [user], authRoutes: true, redis: redis.url }, { logger: false })
  const now = code(Date.now())
  t.equal((await login(a, now)).statusCode, 200)
  await redis.stop()
  await redis.start()
  let r
  do { r = await login(a, now); console.log('status', r.statusCode, r.body) } while (r.statusCode === 503)
  t.equal(r.statusCode, 401, 'replay after restart')
})
