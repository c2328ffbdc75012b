// The README's nginx block (Deployment behind a proxy), as pasted, in front of the reference server with TRUST_PROXY:
// Debian's nginx terminates TLS on loopback, over HTTP/1.1 and over HTTP/2 (where Chromium still opens its WebSocket
// over HTTP/1.1), and the demo page logs in and opens its sockets through it. Needs nginx and openssl (.ci/run
// installs them); without them the test fails and says so, as the other browser tests do without Chromium.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { connect as tcpConnect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { admin } from '../helpers.js'
import { blocksOf } from '../package/readme-blocks.js'
import { launchChromium, openPage } from './chromium.js'
import { startReference } from './reference.js'

const host = 'app.realtime.test'
const browser = await launchChromium(t, ['--ignore-certificate-errors', `--host-resolver-rules=MAP ${host} 127.0.0.1`])

function needs (command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: 'ignore' })
  } catch {
    throw new Error(`the nginx test needs Debian's ${command} (apt-get install ${command})`)
  }
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

/** Resolves once something accepts connections on the port (nginx has started), false once nginx has exited. */
async function accepting (port: number, running: () => boolean): Promise<boolean> {
  for (;;) {
    if (!running()) return false
    const open = await new Promise<boolean>(resolve => {
      const socket = tcpConnect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (open) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** nginx with the README's server block, once as written (HTTP/1.1) and once with `http2`, in front of `appPort`. */
async function startNginx (t: Test, appPort: number): Promise<{ http1: number, http2: number }> {
  needs('nginx', ['-v'])
  needs('openssl', ['version'])
  const dir = t.testdir({})
  const block = blocksOf(readFileSync('README.md', 'utf8')).find(block => block.lang === 'nginx')!.code
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  // A port found free may be taken before nginx binds it (tap runs two files at once): then nginx starts again.
  for (let attempt = 1; ; attempt++) {
    const ports = { http1: await freePort(), http2: await freePort() }
    const failure = await nginxOn(t, dir, block, appPort, ports)
    if (failure === null) return ports
    if (attempt === 3 || !failure.includes('Address already in use')) throw new Error(`nginx exited: ${failure}`)
  }
}

/** nginx on `ports` until the test ends: null once it accepts connections, else why it exited. */
async function nginxOn (t: Test, dir: string, block: string, appPort: number, { http1, http2 }: { http1: number, http2: number }): Promise<string | null> {
  const server = (listen: string) => block
    .replace('listen 443 ssl;', listen)
    .replace('# ssl_certificate ...; ssl_certificate_key ...;', `ssl_certificate ${join(dir, 'cert.pem')}; ssl_certificate_key ${join(dir, 'key.pem')};`)
    .replace('proxy_pass http://127.0.0.1:8055;', `proxy_pass http://127.0.0.1:${appPort};`)
  // The map once; the server block twice.
  const [map, ...rest] = server(`listen 127.0.0.1:${http1} ssl;`).split('\n\n')
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(kind => `${kind}_temp_path ${join(dir, kind)};`).join(' ')
  writeFileSync(join(dir, 'nginx.conf'), `daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  ${temp}
${map}

${rest.join('\n\n')}

${server(`listen 127.0.0.1:${http2} ssl http2;`).split('\n\n').slice(1).join('\n\n')}
}
`)
  // What nginx says before it opens its error log (a configuration it refuses) goes to stderr.
  const nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  nginx.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  let running = true
  const exited = new Promise(resolve => nginx.once('close', () => { running = false; resolve(undefined) }))
  t.teardown(async () => {
    nginx.kill('SIGTERM')
    await exited
  })
  // nginx writes its pid once it has bound every port (until then a port may be another process's).
  const alive = () => running
  while (alive() && !existsSync(join(dir, 'nginx.pid'))) await new Promise(resolve => setTimeout(resolve, 20))
  const started = await Promise.all([accepting(http1, alive), accepting(http2, alive)])
  if (started.every(Boolean) && running) return null
  await exited
  const log = join(dir, 'error.log')
  return `${stderr}${existsSync(log) ? readFileSync(log, 'utf8') : ''}`
}

t.test('the README\'s nginx block: the demo page logs in and opens its sockets over https, HTTP/1.1 and HTTP/2', async t => {
  const reference = await startReference(t, { TRUST_PROXY: '127.0.0.1' })
  const ports = await startNginx(t, Number(new URL(reference.origin).port))
  for (const [protocol, port] of [['http/1.1', ports.http1], ['h2', ports.http2]] as const) {
    const origin = `https://${host}:${port}`
    const page = await openPage(t, browser)
    await page.goto(`${origin}/`)
    t.equal(await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol), protocol)
    await page.getByLabel('Email').fill(admin.email)
    await page.getByLabel('Password').fill(admin.password)
    await page.getByLabel('Login mode').selectOption('session')
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.locator('#status', { hasText: 'logged in (session)' }).waitFor()
    await page.locator('#connect').click()
    // A refused upgrade (403 from the origin check) is logged as the socket's close: fail with it, not at the timeout.
    const closed = page.locator('#log li[data-connection="websocket"][data-direction="event"]', { hasText: 'closed' }).first()
    await Promise.race([
      page.locator('#status', { hasText: 'connected' }).waitFor(),
      closed.waitFor().then(async () => { throw new Error(`${protocol}: the socket ${await closed.locator('.frame').textContent()}, upgrades: ${JSON.stringify(reference.upgrades.map(({ path, origin, status }) => ({ path, origin, status })))}`) })
    ])
    await page.locator('#whoami').click()
    const whoami = page.locator('#log li[data-connection="websocket"][data-direction="in"]', { hasText: '"whoami"' }).first()
    await whoami.waitFor()
    t.match(JSON.parse((await whoami.locator('.frame').textContent())!), { type: 'whoami', data: { email: admin.email, admin: true } }, protocol)
    // The Host with its port, the https the proxy saw: the browser's Origin is the request's own.
    t.match(reference.upgrades.at(-1), { path: '/websocket', origin, status: undefined }, `${protocol}: the upgrade passed the origin check`)
  }
})
