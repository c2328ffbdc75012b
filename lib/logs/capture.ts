// Taps the logger the app gave Fastify: every line it and its children write also reaches the logs endpoint. pino keeps
// the destination in one symbol, which a child logger inherits from its parent: the tap is put there as the given
// logger's own, so the lines of that logger and of its every child (request logs included) pass through it, and those
// of its parent and its siblings (another app's logger, on the same root) do not.
import type { FastifyBaseLogger } from 'fastify'
import { redactLogLine } from '../redaction.js'
import { logLevels } from '../endpoints/logs.js'

type Destination = { write (line: string): unknown }
type Holder = Record<symbol, Destination | undefined>
type Listener = { onLine: (line: string) => void, wanted: () => boolean }

/**
 * pino's destination symbol, if `level` holds it as its own. It is found by its name: each copy of pino makes its own
 * `Symbol('pino.stream')`, and the app's Fastify may log through another copy than the plugin's (pino 9 beside 10).
 */
function ownStreamSymbol (level: object): symbol | undefined {
  return Object.getOwnPropertySymbols(level).find(own => own.description === 'pino.stream')
}

/** pino's symbol named `name`, held by the logger or up its prototype chain (by a parent, or pino's prototype). */
export function pinoSymbolOf (logger: object | null, name: string): symbol | undefined {
  for (let level = logger; level !== null; level = Object.getPrototypeOf(level) as object | null) {
    const symbol = Object.getOwnPropertySymbols(level).find(own => own.description === name)
    if (symbol !== undefined) return symbol
  }
  return undefined
}

/**
 * The logger the app gave Fastify: Fastify's own when Fastify made it from the `logger` options (it then holds the
 * destination), else the `loggerInstance`, of which Fastify's own is a child.
 */
export function givenLogger (log: object): object | null {
  return ownStreamSymbol(log) !== undefined ? log : Object.getPrototypeOf(log) as object | null
}

/** The tap on each logger, shared by the apps given it: each line is written once, and handed to each app once. */
const taps = new WeakMap<object, { listeners: Set<Listener>, untap: () => void }>()

/** Puts a tap on `logger` as its own destination, handing each line to `listeners`; returns how to take it off. */
function tap (logger: Holder, symbol: symbol, listeners: Set<Listener>): () => void {
  const owned = ownStreamSymbol(logger) === symbol
  const held = logger[symbol]!
  // A logger without a destination of its own writes to its parent's: read at each line, so that a tap put on the
  // parent since (another app's, given the parent) gets this logger's lines too.
  const destination = owned ? () => held : () => (Object.getPrototypeOf(logger) as Holder)[symbol]!
  const write = (line: string) => {
    const written = destination().write(line)
    // Redacted before it leaves: with Redis, a line crosses the network to every process.
    let redacted: string | undefined
    for (const listener of listeners) if (listener.wanted()) listener.onLine(redacted ??= redactLogLine(line))
    return written
  }
  // Everything but `write` (flush, fd, what pino sets on a multistream, ...) still reaches the real destination. The
  // proxy stands for an empty object, not the destination: one whose `write` is read-only (frozen) could not be shown
  // with another `write`, and every log call would throw.
  const proxy = new Proxy(Object.create(null) as Destination, {
    get (_target, property) {
      if (property === 'write') return write
      const target = destination()
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
    has: (_target, property) => Reflect.has(destination(), property),
    set: (_target, property, value) => Reflect.set(destination(), property, value)
  })
  logger[symbol] = proxy
  return () => {
    // Something put in place since (another copy of the plugin's tap) stays: this one then only passes lines on.
    if (logger[symbol] !== proxy) return
    if (owned) logger[symbol] = held
    else delete logger[symbol]
  }
}

/**
 * Starts forwarding the lines of the logger the app gave Fastify (`log`: Fastify's own) and of its children to
 * `onLine` while `wanted()` says someone may read them (a line nobody reads is not redacted); returns how to stop, or
 * null for a logger that is not pino.
 */
export function captureLogLines (log: FastifyBaseLogger, onLine: (line: string) => void, wanted: () => boolean = () => true): (() => void) | null {
  const logger = givenLogger(log)
  const symbol = pinoSymbolOf(logger, 'pino.stream')
  const holder = logger as Holder
  if (symbol === undefined || typeof holder[symbol]?.write !== 'function') return null // logger: false, or not pino
  let shared = taps.get(holder)
  if (shared === undefined) {
    const listeners = new Set<Listener>()
    shared = { listeners, untap: tap(holder, symbol, listeners) }
    taps.set(holder, shared)
  }
  const { listeners, untap } = shared
  const listener = { onLine, wanted }
  listeners.add(listener)
  return () => {
    listeners.delete(listener)
    // The last app on the logger gone: it is left as it was found.
    if (listeners.size > 0) return
    untap()
    taps.delete(holder)
  }
}

/** The logger's level names and numbers, its custom levels included (pino's own, for a logger that is not pino). */
export function levelValuesOf (log: FastifyBaseLogger): Record<string, number> {
  return (log as { levels?: { values?: Record<string, number> } }).levels?.values ?? logLevels
}
