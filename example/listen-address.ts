// HOST and PORT: where `npm start` listens. Set but empty, as compose files and `.env` templates write them, is unset:
// an empty HOST listened on every interface, an empty PORT on a random one.
import { InvalidConfigError } from '../lib/index.js'

export function listenAddress (env: Record<string, string | undefined>): { host: string, port: number } {
  const host = env.HOST || '127.0.0.1'
  const port = env.PORT || '8055'
  // Node's own refusal (ERR_SOCKET_BAD_PORT) names no variable.
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65_535) throw new InvalidConfigError('PORT must be an integer from 0 to 65535')
  return { host, port: Number(port) }
}
