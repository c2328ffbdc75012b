// @directus/sdk and graphql-ws running in a page of the reference server, as the demo page loads them (from
// /demo/). Each socket's frames and close, and each auth call's answer, reach the test as they happen: the page calls
// a binding, so the test waits for events, never polls or sleeps.
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { Test } from 'tap'
import type { AuthenticationClient, AuthenticationMode, DirectusClient, WebSocketAuthModes, WebSocketClient } from '@directus/sdk'
import type { Client as GraphqlClient } from 'graphql-ws'
import { openPage } from './chromium.js'

export type Connection = 'websocket' | 'graphql'

export interface Frame {
  type: string
  uid?: string
  status?: string
  error?: { code: string, message: string }
  data?: unknown
  id?: string
  payload?: unknown
}

export type WireEvent =
  | { connection: Connection, event: 'open' }
  | { connection: Connection, event: 'frame', frame: Frame }
  | { connection: Connection, event: 'sent', frame: Frame }
  | { connection: Connection, event: 'close', code: number, reason: string }
  | { connection: 'http', event: 'response', path: string, status: number, body: unknown }

interface InPage {
  sdk: typeof import('@directus/sdk')
  graphqlWs: typeof import('graphql-ws')
  globals: { fetch: typeof fetch, WebSocket: typeof WebSocket }
  recordingWebSocket: (connection: Connection) => typeof WebSocket
  mode?: AuthenticationMode
  auth?: DirectusClient<unknown> & AuthenticationClient<unknown>
  socket?: WebSocketClient<unknown>
  graphql?: GraphqlClient
}

declare global {
  interface Window {
    recordWire: (event: WireEvent) => Promise<void>
    sdkTest: InPage
  }
}

export const isFrame = (connection: Connection, match: (frame: Frame) => boolean = () => true) =>
  (event: WireEvent): event is WireEvent & { event: 'frame' } => event.connection === connection && event.event === 'frame' && match(event.frame)
export const isSent = (connection: Connection) =>
  (event: WireEvent): event is WireEvent & { event: 'sent' } => event.connection === connection && event.event === 'sent'
export const isClose = (connection: Connection) =>
  (event: WireEvent): event is WireEvent & { event: 'close' } => event.connection === connection && event.event === 'close'
export const isResponse = (path: string) =>
  (event: WireEvent): event is WireEvent & { event: 'response' } => event.connection === 'http' && event.event === 'response' && event.path === path
export const authError = (code: string) => (frame: Frame) => frame.type === 'auth' && frame.error?.code === code
export const authOk = (frame: Frame) => frame.type === 'auth' && frame.status === 'ok'

export class SdkPage {
  readonly page: Page
  readonly context: BrowserContext
  /** Everything that happened, in order. */
  readonly events: WireEvent[] = []
  readonly #lastMatch = new Map<WireEvent['connection'], number>()
  #seen = -1
  #wake: (() => void)[] = []

  private constructor (page: Page) {
    this.page = page
    this.context = page.context()
  }

  /**
   * A page of the reference server at `origin`, with the SDK and graphql-ws loaded. `sdk`: the path the SDK's module is
   * served at (the demo page's, SDK 18, by default).
   */
  static async open (t: Test, browser: Browser, origin: string, sdk = '/demo/sdk.js'): Promise<SdkPage> {
    return await SdkPage.#load(await openPage(t, browser), origin, sdk)
  }

  /** Another tab of this page's browser context (its cookies), loaded as `open` loads one; closed with the context. */
  async tab (t: Test, origin: string, sdk = '/demo/sdk.js'): Promise<SdkPage> {
    const page = await this.context.newPage()
    page.setDefaultTimeout(0)
    page.on('pageerror', (error) => t.fail(`uncaught in the page: ${error.message}`))
    return await SdkPage.#load(page, origin, sdk)
  }

  static async #load (page: Page, origin: string, sdk: string): Promise<SdkPage> {
    const sdkPage = new SdkPage(page)
    await sdkPage.page.exposeFunction('recordWire', (event: WireEvent) => {
      sdkPage.events.push(event)
      for (const wake of sdkPage.#wake.splice(0)) wake()
    })
    await sdkPage.page.goto(`${origin}/`)
    await sdkPage.page.evaluate(async (paths) => {
      // The browser's WebSocket, telling the test what crosses it either way.
      const recordingWebSocket = (connection: Connection) => class extends WebSocket {
        constructor (url: string | URL, protocols?: string | string[]) {
          super(url, protocols)
          this.addEventListener('open', () => { window.recordWire({ connection, event: 'open' }) })
          this.addEventListener('message', (event) => { window.recordWire({ connection, event: 'frame', frame: JSON.parse(event.data) }) })
          this.addEventListener('close', (event) => { window.recordWire({ connection, event: 'close', code: event.code, reason: event.reason }) })
        }

        send (data: string) {
          window.recordWire({ connection, event: 'sent', frame: JSON.parse(data) })
          super.send(data)
        }
      }
      const recordingFetch = async (url: string | URL | Request, init?: RequestInit) => {
        const response = await fetch(url, init)
        const text = await response.clone().text()
        window.recordWire({ connection: 'http', event: 'response', path: new URL(String(url)).pathname, status: response.status, body: text ? JSON.parse(text) : null })
        return response
      }
      window.sdkTest = {
        sdk: await import(paths.sdk),
        graphqlWs: await import(paths.graphqlWs),
        globals: { fetch: recordingFetch, WebSocket: recordingWebSocket('websocket') },
        recordingWebSocket
      }
    }, { sdk, graphqlWs: '/demo/graphql-ws/client.js' })
    return sdkPage
  }

  /**
   * The first event that matches after the previous match on the same connection: each socket's events, and the HTTP
   * answers, arrive in order, but not in order with each other (a revocation frame may beat the logout's answer).
   */
  async next<E extends WireEvent> (match: (event: WireEvent) => event is E): Promise<E>
  async next (match: (event: WireEvent) => boolean): Promise<WireEvent>
  async next (match: (event: WireEvent) => boolean): Promise<WireEvent> {
    for (let index = 0; ; index++) {
      while (index === this.events.length) await new Promise<void>(resolve => this.#wake.push(resolve))
      const event = this.events[index]
      if (index > Math.max(this.#seen, this.#lastMatch.get(event.connection) ?? -1) && match(event)) {
        this.#lastMatch.set(event.connection, index)
        return event
      }
    }
  }

  /** Done with every event so far: `next` looks only at later ones. */
  seen (): void {
    this.#seen = this.events.length - 1
  }

  /** `createDirectus(origin).with(authentication(mode))`, then `login`. */
  login (mode: AuthenticationMode, email: string, password: string): Promise<unknown> {
    return this.page.evaluate(async ({ mode, email, password }) => {
      const test = window.sdkTest
      test.mode = mode
      test.auth = test.sdk.createDirectus(location.origin, { globals: test.globals }).with(test.sdk.authentication(mode))
      return await test.auth.login(email, password)
    }, { mode, email, password })
  }

  /**
   * `.with(realtime({ authMode }))`, then `connect`. A session socket's credential is the cookie the browser sends with
   * the upgrade: it gets a client without the login's authentication, which would answer TOKEN_EXPIRED with a token it
   * does not have (and throw).
   */
  async connect (authMode: WebSocketAuthModes): Promise<void> {
    await this.page.evaluate(async (authMode) => {
      const test = window.sdkTest
      const base = test.mode === 'session' ? test.sdk.createDirectus(location.origin, { globals: test.globals }) : test.auth!
      test.socket?.disconnect()
      test.socket = base.with(test.sdk.realtime({ authMode, reconnect: false }))
      await test.socket.connect()
    }, authMode)
  }

  /** Sends `{"type":"whoami","uid":uid}` and answers the reply's `data`. */
  async whoami (uid: string): Promise<unknown> {
    await this.page.evaluate((uid) => window.sdkTest.socket!.sendMessage({ type: 'whoami', uid }), uid)
    const reply = await this.next(isFrame('websocket', frame => frame.type === 'whoami' && frame.uid === uid))
    return reply.frame.data
  }

  refresh (): Promise<unknown> {
    return this.page.evaluate(() => window.sdkTest.auth!.refresh())
  }

  async logout (): Promise<void> {
    await this.page.evaluate(() => window.sdkTest.auth!.logout())
  }

  /** Subscribes with graphql-ws's client (made on first use), with the login's access token when it has one. */
  async subscribe (query: string): Promise<void> {
    await this.page.evaluate((query) => {
      const test = window.sdkTest
      const url = new URL('/graphql', location.href)
      url.protocol = 'ws:'
      test.graphql ??= test.graphqlWs.createClient({
        url: url.href,
        webSocketImpl: test.recordingWebSocket('graphql'),
        connectionParams: async () => {
          const token = await test.auth?.getToken()
          return token ? { access_token: token } : {}
        },
        retryAttempts: 0
      })
      const ignore = () => {}
      test.graphql.subscribe({ query }, { next: ignore, error: ignore, complete: ignore })
    }, query)
  }

  /** The browser's cookie of that name for the page's site. */
  async cookie (name: string) {
    return (await this.context.cookies()).find(cookie => cookie.name === name)
  }
}

/** Logs out through the SDK: 204, then the open socket's AUTH_REVOKED, after which it is open as the public. */
export async function logoutRevokes (t: Test, page: SdkPage): Promise<void> {
  await page.logout()
  t.equal((await page.next(isResponse('/auth/logout'))).status, 204)
  const revoked = await page.next(isFrame('websocket', authError('AUTH_REVOKED')))
  t.same(revoked.frame, { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
  t.equal(await page.whoami('after'), null, 'open, with the public accountability')
}
