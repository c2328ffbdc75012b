// Taps the app's own pino logger: every line it writes also reaches the logs endpoint. The logger keeps its
// destination in one symbol on the root instance, which child loggers (request logs included) inherit, so swapping
// it there sees every line without touching the destination itself.
import type { FastifyBaseLogger } from 'fastify'
import { redactLogLine } from '../redaction.js'
import { logLevels } from '../endpoints/logs.js'

type Destination = { write (line: string): unknown }
type Holder = Record<symbol, Destination | undefined>

/**
 * The logger's destination symbol and the logger that holds it: the root one, up the prototype chain. Fastify's own
 * logger is a child of an app's `loggerInstance`, and a tap there would miss the lines of the instance and its other
 * children. The symbol is found by its name: each copy of pino makes its own `Symbol('pino.stream')`, and the app's
 * Fastify may log through another copy than the plugin's (pino 9 beside 10).
 */
function destinationOf (logger: object): { holder: Holder, symbol: symbol } | undefined {
  for (let level: object | null = logger; level !== null; level = Object.getPrototypeOf(level) as object | null) {
    const symbol = Object.getOwnPropertySymbols(level).find(own => own.description === 'pino.stream')
    if (symbol !== undefined) return { holder: level as Holder, symbol }
  }
  return undefined
}

/**
 * Starts forwarding the logger's lines to `onLine` while `wanted()` says someone may read them (a line nobody reads is
 * not redacted); returns how to stop, or null for a logger that is not pino.
 */
export function captureLogLines (log: FastifyBaseLogger, onLine: (line: string) => void, wanted: () => boolean = () => true): (() => void) | null {
  const found = destinationOf(log)
  const destination = found && found.holder[found.symbol]
  if (found === undefined || typeof destination?.write !== 'function') return null // logger: false, or not pino
  const { holder, symbol } = found
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
  holder[symbol] = tap
  return () => {
    tapping = false
    // Another app on the same logger may have tapped it since: its tap stays, and this one passes lines through.
    if (holder[symbol] === tap) holder[symbol] = destination
  }
}

/** The logger's level names and numbers, its custom levels included (pino's own, for a logger that is not pino). */
export function levelValuesOf (log: FastifyBaseLogger): Record<string, number> {
  return (log as { levels?: { values?: Record<string, number> } }).levels?.values ?? logLevels
}
