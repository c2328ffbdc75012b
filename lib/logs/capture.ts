// Taps the app's own pino logger: every line it writes also reaches the logs endpoint. The logger keeps its
// destination in one symbol on the root instance, which child loggers (request logs included) inherit, so swapping
// it there sees every line without touching the destination itself.
import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { redactLogLine } from '../redaction.js'

type Destination = { write (line: string): unknown }

/** Starts forwarding the logger's lines to `onLine`; returns how to stop, or null for a logger that is not pino. */
export function captureLogLines (log: FastifyBaseLogger, onLine: (line: string) => void): (() => void) | null {
  const logger = log as unknown as Record<symbol, Destination | undefined>
  const destination = logger[pino.symbols.streamSym]
  if (typeof destination?.write !== 'function') return null // logger: false, or a logger of the app's own kind
  const write = (line: string) => {
    const written = destination.write(line)
    // Redacted before it leaves: with Redis, a line crosses the network to every process.
    onLine(redactLogLine(line))
    return written
  }
  // Everything but `write` (flush, fd, ...) still reaches the real destination, with the real `this`.
  logger[pino.symbols.streamSym] = new Proxy(destination, {
    get (target, property) {
      if (property === 'write') return write
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  return () => { logger[pino.symbols.streamSym] = destination }
}
