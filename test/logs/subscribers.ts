// An app whose log lines go to a sink (the stream taps the logger, not the destination), and an admin subscribed to
// its logs: what the logs tests start from.
import type { Test } from 'tap'
import type { FastifyServerOptions } from 'fastify'
import type { Redis } from 'ioredis'
import type { RealtimeOptions } from '../../lib/index.js'
import { admin, build, connect, type Client } from '../helpers.js'

export const quiet = { logger: { level: 'trace', stream: { write () {} } } }

/** `serverOptions`: the app's own logger, in place of the quiet one. */
export async function logsApp (t: Test, options: RealtimeOptions = {}, serverOptions: FastifyServerOptions = quiet) {
  return build(t, { users: [admin], ...options }, serverOptions)
}

/**
 * Resolves once `processes` subscribe to the logs channel: Redis's answer to a PUBLISH counts who heard it (a
 * `listening`, which every process takes as a reminder).
 */
export async function subscribedToLogs (redis: Redis, processes: number): Promise<void> {
  while (await redis.publish('realtime:logs', 'listening') < processes);
}

/** A client authenticated with `token` and subscribed at `level`. */
export async function subscriber (t: Test, url: string, token: string, level = 'info'): Promise<Client> {
  const client = await connect(url)
  client.send({ type: 'auth', access_token: token })
  await client.next()
  client.send({ type: 'subscribe', log_level: level })
  t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: level }, `subscribed at ${level}`)
  return client
}

/** A `logs` frame with a line (`data`), from this process or another (`node`). */
export type LogsFrame<Entry = Record<string, unknown>> = { type: string, data?: Entry, node: string }

/** The `logs` data frames a subscriber gets up to the one `last` matches, that one included. */
export async function framesUntil<Entry = Record<string, unknown>> (client: { next: () => Promise<unknown> }, last: (entry: Entry) => boolean): Promise<Array<LogsFrame<Entry>>> {
  const frames: Array<LogsFrame<Entry>> = []
  for (;;) {
    const frame = await client.next() as LogsFrame<Entry>
    if (frame.type !== 'logs' || frame.data === undefined) continue
    frames.push(frame)
    if (last(frame.data)) return frames
  }
}
