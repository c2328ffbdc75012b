// Taps the app's own pino logger: every line it writes also reaches the logs endpoint. The logger keeps its
// destination in one symbol on the root instance, which child loggers (request logs included) inherit, so swapping
// it there sees every line without touching the destination itself.
import type { FastifyBaseLogger } from 'fastify'
import { redactLogLine } from '../redaction.js'
import { logLevels } from '../endpoints/logs.js'

type Destination = { write (line: string): unknown }

/**
 * The logger's destination symbol, found by its name: each copy of pino makes its own `Symbol('pino.stream')`, and
 * the app's Fastify may log through another copy than the plugin's (pino 9 beside 10).
 */
function streamSymbolOf (logger: object): symbol | undefined {
  for (let level: object | null = logger; level !== null; level = Object.getPrototypeOf(level) as object | null) {
    const found = Object.getOwnPropertySymbols(level).find(symbol => symbol.description === 'pino.stream')
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * Starts forwarding the logger's lines to `onLine` while `wanted()` says someone may read them (a line nobody reads is
 * not redacted); returns how to stop, or null for a logger that is not pino.
 */
export function captureLogLines (log: FastifyBaseLogger, onLine: (line: string) => void, wanted: () => boolean = () => true): (() => void) | null {
  const logger = log as unknown as Record<symbol, Destination | undefined>
  const streamSym = streamSymbolOf(logger)
  const destination = streamSym && logger[streamSym]
  if (streamSym === undefined || typeof destination?.write !== 'function') return null // logger: false, or not pino
  let tapping = true
  const write = (line: string) => {
    const written = destination.write(line)
    // Redacted before it leaves: with Redis, a line crosses the network to every process.
    if (tapping && wanted()) onLine(redactLogLine(line))
    return written
  }
  // Everything but `write` (flush, fd, ...) still reaches the real destination, with the real `this`.
  const tap = new Proxy(destination, {
    get (target, property) {
      if (property === 'write') return write
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  logger[streamSym] = tap
  return () => {
    tapping = false
    // Another app on the same logger may have tapped it since: its tap stays, and this one passes lines through.
    if (logger[streamSym] === tap) logger[streamSym] = destination
  }
}

/** The logger's level names and numbers, its custom levels included (pino's own, for a logger that is not pino). */
export function levelValuesOf (log: FastifyBaseLogger): Record<string, number> {
  return (log as { levels?: { values?: Record<string, number> } }).levels?.values ?? logLevels
}
