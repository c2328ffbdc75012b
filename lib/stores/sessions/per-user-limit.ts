// How many refresh sessions one user keeps in a store: a login past it ends the user's session that expires first.
import { InvalidConfigError } from '../../errors.js'

/** The default of the plugin's option and of the stores an app makes: a person's devices and tabs stay far below it. */
export const defaultSessionsPerUser = 100

/** A store's `maxSessionsPerUser`: a whole number of at least 1 (0 would end each new session too), or Infinity. */
export function sessionsPerUser (value: number | undefined): number {
  if (value === undefined) return defaultSessionsPerUser
  if (value !== Infinity && !(Number.isSafeInteger(value) && value >= 1)) {
    throw new InvalidConfigError(`maxSessionsPerUser must be a whole number of at least 1, or Infinity (got ${value})`)
  }
  return value
}
