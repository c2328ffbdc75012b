// Building accountabilities: the one place an identity meets the client it came from.
import type { Accountability, Identity } from '../../types/index.js'

export interface ClientInfo {
  ip: string | null
  userAgent: string | null
  origin: string | null
}

export function authenticatedAccountability (identity: Identity, session: string | undefined, client: ClientInfo): Accountability {
  const { user, role, admin } = identity
  const { ip, userAgent, origin } = client
  return session === undefined
    ? { user, role, admin, ip, userAgent, origin }
    : { user, role, admin, ip, userAgent, origin, session }
}

/** Never null: a socket nobody authenticated still has this one (GHSA-849r-qrwj-8rv4). */
export function publicAccountability (publicRole: string | null, client: ClientInfo): Accountability {
  const { ip, userAgent, origin } = client
  return { user: null, role: publicRole, admin: false, ip, userAgent, origin }
}
