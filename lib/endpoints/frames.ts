// Frames of the JSON protocol (`/websocket`, `/websocket/logs`), with Directus's field order.
import type { RealtimeErrorCode } from '../../types/index.js'

export type Uid = string | number | undefined

export function errorFrame (type: string, code: RealtimeErrorCode, message: string, uid?: Uid) {
  return uid === undefined
    ? { type, status: 'error', error: { code, message } }
    : { type, status: 'error', error: { code, message }, uid }
}

export function authOkFrame (uid: Uid, refreshToken: string | undefined) {
  const frame: Record<string, unknown> = { type: 'auth', status: 'ok' }
  if (uid !== undefined) frame.uid = uid
  if (refreshToken !== undefined) frame.refresh_token = refreshToken
  return frame
}

export function withUid (frame: Record<string, unknown>, uid: Uid) {
  if (uid !== undefined) frame.uid = uid
  return frame
}
