// A logger that logs nothing, for stores tested without a Fastify app.
import pino from 'pino'

export const silentLog = pino({ level: 'silent' })
