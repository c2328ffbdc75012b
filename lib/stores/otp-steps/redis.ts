// Each user's last accepted TOTP step on Redis, so that a code accepted by one process is a replay on every other.
// One compare-and-set script: of two logins with one code at once, on two processes, exactly one claims its step.
// Beside the step, in the user's slot, the nonce of the claim that set it: ioredis sends a script again when its
// connection drops before the answer, and the claim made again must not find its own step taken. The step's key keeps
// the format the release before read (GET, tonumber), so processes of both can run side by side.
import { refuseLateLua } from '../write-deadline.js'
import { ackedEval } from '../replica-acks.js'
import { redisKeys, type RedisKeys } from '../redis-keys.js'
import type { RedisClient } from '../redis-connection.js'
import type { OtpSteps } from './contract.js'

// A code is good for its step and the next two (a clock a step behind), and processes' clocks differ a little: after
// four steps no code of a recorded step is valid anywhere, and the key can go.
const keepMs = 4 * 30_000
// ioredis gives up on a command after 2 s (lib/stores/redis-connection.ts): a claim that has not acted within 1 s never
// will, so a login answered SERVICE_UNAVAILABLE has not used its code up.
const actWithinMs = 1_000

// KEYS: the user's step, its claim's nonce. ARGV: deadline, step, keepMs, nonce. 1 when the step was newer and is now
// the user's last, or is already, by this claim (made again: it changes nothing, so whatever the deadline).
const claimScript = `${refuseLateLua}
local last = redis.call('GET', KEYS[1])
if last == ARGV[2] and redis.call('GET', KEYS[2]) == ARGV[4] then return 1 end
refuseLate(ARGV[1])
if last and tonumber(last) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
return 1`

// KEYS: the user's step, its claim's nonce. ARGV: step, keepMs, nonce. The step before it becomes the user's last, if
// the claim is still the last: a newer one claimed meanwhile stands, and so does the same step claimed again (this
// script made again after that).
const giveBackScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1] - 1, 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
end
return 1`

export class RedisOtpSteps implements OtpSteps {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys

  /** How many replicas confirm a claim before it counts (`redisReplicaAcks`): lost, its code could be used again. */
  readonly #replicaAcks: number

  constructor (redis: RedisClient, prefix: string, replicaAcks = 0) {
    this.#redis = redis
    this.#keys = redisKeys(prefix)
    this.#replicaAcks = replicaAcks
  }

  async claim (user: string, step: number, nonce: string): Promise<boolean> {
    const claimed = await ackedEval(this.#redis, this.#replicaAcks, claimScript, [this.#keys.otpStep(user), this.#keys.otpClaim(user)],
      Date.now() + actWithinMs, step, keepMs, nonce)
    return claimed === 1
  }

  async giveBack (user: string, step: number, nonce: string): Promise<void> {
    await this.#redis.eval(giveBackScript, 2, this.#keys.otpStep(user), this.#keys.otpClaim(user), step, keepMs, nonce)
  }
}
