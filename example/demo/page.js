// The demo page's script. Every call on the wire is made by @directus/sdk or graphql-ws, unmodified: this file wires
// the buttons to them and logs each frame as it crosses the wire.
/* global location */
import { authentication, createDirectus, realtime } from '/demo/sdk.js'
import { createClient } from '/demo/graphql-ws/client.js'

const byId = (id) => document.getElementById(id)

/** One line of the log: when, which connection, which way (in, out, event), what. */
function record (connection, direction, text) {
  const now = new Date()
  const time = document.createElement('time')
  time.dateTime = now.toISOString()
  time.textContent = `${now.toTimeString().slice(0, 8)}.${String(now.getMilliseconds()).padStart(3, '0')}`
  const frame = document.createElement('span')
  frame.className = 'frame'
  frame.textContent = text
  const item = document.createElement('li')
  item.dataset.connection = connection
  item.dataset.direction = direction
  item.append(time, `${connection} ${{ in: '←', out: '→', event: '·' }[direction]} `, frame)
  byId('log').append(item)
}

/** The browser's WebSocket, logging what crosses it; both clients are handed one. */
const loggedWebSocket = (connection) => class extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols)
    record(connection, 'event', `connecting to ${url}`)
    this.addEventListener('open', () => record(connection, 'event', 'open'))
    this.addEventListener('message', (event) => record(connection, 'in', event.data))
    this.addEventListener('close', (event) => record(connection, 'event', `closed ${event.code} ${event.reason}`.trim()))
  }

  send (data) {
    record(connection, 'out', data)
    super.send(data)
  }
}

/** fetch, logging each auth call's answer (the cookies it sets are HttpOnly: the page never sees them). */
async function loggedFetch (url, init) {
  const response = await fetch(url, init)
  record('http', 'event', `${init?.method ?? 'GET'} ${new URL(url).pathname} ${response.status}`)
  return response
}

const globals = { fetch: loggedFetch, WebSocket: loggedWebSocket('websocket') }
const setStatus = (text) => { byId('status').value = text }

let auth = null // the SDK client that logged in
let loginMode = null
let socket = null // the SDK client of the open /websocket
let graphql = null

/** Runs a button's work; what fails is logged, not thrown. */
function run (work) {
  work().catch((error) => {
    const message = error?.errors?.[0]?.message ?? error?.message ?? 'the socket did not open'
    record('page', 'event', `error: ${message}`)
  })
}

async function connect () {
  socket?.disconnect()
  // A session socket's credential is the cookie the browser sends with the upgrade. Given the login's client, the SDK
  // would answer TOKEN_EXPIRED with a token it does not have (and stop reading the socket): it gets a bare client.
  const base = auth && loginMode !== 'session' ? auth : createDirectus(location.origin, { globals })
  socket = base.with(realtime({ authMode: byId('auth-mode').value, reconnect: false }))
  const opened = await socket.connect()
  if (loginMode === 'session') opened.addEventListener('message', onSessionFrame)
  setStatus(`connected (${loginMode ?? 'not logged in'}, authMode ${byId('auth-mode').value})`)
}

/** A session socket cannot re-authenticate in place: on expiry, refresh the cookie and open a socket that carries it. */
function onSessionFrame (event) {
  const frame = JSON.parse(event.data)
  if (frame.type !== 'auth' || frame.error?.code !== 'TOKEN_EXPIRED') return
  run(async () => {
    await auth.refresh()
    await connect()
  })
}

// The SDK's socket sends no token in session mode: the browser's cookie authenticates it at the upgrade.
byId('login-mode').addEventListener('change', () => {
  byId('auth-mode').value = byId('login-mode').value === 'session' ? 'public' : 'handshake'
})

byId('login-form').addEventListener('submit', (event) => {
  event.preventDefault()
  run(async () => {
    const mode = byId('login-mode').value
    const client = createDirectus(location.origin, { globals }).with(authentication(mode))
    const otp = byId('otp').value
    await client.login(byId('email').value, byId('password').value, otp ? { otp } : {})
    auth = client
    loginMode = mode
    setStatus(`logged in (${mode})`)
  })
})

byId('logout').addEventListener('click', () => run(async () => {
  if (!auth) throw new Error('not logged in')
  await auth.logout()
  auth = null
  setStatus(`logged out (${loginMode})`)
}))

byId('connect').addEventListener('click', () => run(connect))

byId('whoami').addEventListener('click', () => run(async () => {
  if (!socket) throw new Error('connect first')
  socket.sendMessage({ type: 'whoami' })
}))

byId('graphql').addEventListener('click', () => run(async () => {
  await graphql?.dispose()
  const url = new URL('/graphql', location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  graphql = createClient({
    url: url.href,
    webSocketImpl: loggedWebSocket('graphql'),
    // The login's access token when it has one (none in session mode: the cookie travels with the upgrade).
    connectionParams: async () => {
      const token = await auth?.getToken()
      return token ? { access_token: token } : {}
    },
    retryAttempts: 0
  })
  // Both on one socket, which the log shows; the ticks run until it closes (a logout closes it with 4403).
  const ignore = () => {}
  for (const query of ['{ me { id email } }', 'subscription { ticks(every: 1000) }']) {
    graphql.subscribe({ query }, { next: ignore, error: ignore, complete: ignore })
  }
}))
