// The line telling of a gap, written as the app's logger writes its own (its level names, message key, `base`,
// timestamp, mixin, redaction): a log viewer, or a subscriber's filter, reads it as it reads every other line.
import { hostname } from 'node:os'
import type { FastifyBaseLogger } from 'fastify'
import { givenLogger, pinoSymbolOf } from './capture.js'
import { logLevels } from '../endpoints/logs.js'

/** Writes a notice at `level` (a pino number), or at the logger's next level up; returns the line. */
export type NoticeWriter = (level: number, fields: Record<string, unknown>, msg: string) => string

type PinoWrite = (fields: object, msg: string, level: number) => void

/** pino's default `base`, for a logger that is not pino (the notice is then written as pino writes by default). */
const base = { pid: process.pid, hostname: hostname() }

/** The lowest of `levels` at `level` or above; the most severe of them for a level past them all (one not read). */
function levelAtLeast (level: number, levels: number[]): number {
  const highest = Math.max(...levels)
  return levels.filter(value => value >= Math.min(level, highest)).reduce((lowest, value) => Math.min(lowest, value))
}

function isJson (line: string): boolean {
  try {
    JSON.parse(line)
    return true
  } catch {
    return false
  }
}

/** How the notices of the app's logger (`log`: Fastify's own) are written. */
export function noticeWriter (log: FastifyBaseLogger): NoticeWriter {
  const logger = givenLogger(log)
  const write = pinoSymbolOf(logger, 'pino.write')
  const stream = pinoSymbolOf(logger, 'pino.stream')
  const levels = Object.values(logLevels)
  const asPino: NoticeWriter = (level, fields, msg) => JSON.stringify({ level: levelAtLeast(level, levels), time: Date.now(), ...base, ...fields, msg })
  if (write === undefined || stream === undefined) return asPino
  // The logger itself, but for its destination: neither the app's output nor the stream's tap (which would publish the
  // notice to every process again) gets the line. pino's write, under the level methods: the logger's own level is not
  // asked, as the lines a notice reports passed their own logger's (a child's, set lower than its parent's).
  let line = ''
  const sink = { write (written: string) { line = written } }
  const view = Object.create(logger, { [stream]: { value: sink } }) as Record<symbol, PinoWrite>
  const own = Object.values((logger as { levels: { values: Record<string, number> } }).levels.values)
  // pino puts a `msgPrefix` in its level methods, which the notice passes by: put here as they would.
  const { msgPrefix } = logger as { msgPrefix?: unknown }
  const prefix = typeof msgPrefix === 'string' ? msgPrefix : ''
  return (level, fields, msg) => {
    view[write](fields, prefix + msg, levelAtLeast(level, own))
    // A line that is not JSON (a `streamWrite` hook of the app's) reaches no subscriber: the notice is pino's then.
    return isJson(line) ? line : asPino(level, fields, msg)
  }
}
