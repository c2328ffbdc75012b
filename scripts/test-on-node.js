// `npm run test:node [-- <major>...]`: the tap suite (`npm run test:unit`) again under other Node releases, the newest
// LTS by default. The package says Node 20.12 or newer and apps deploy on the newer lines, where what the plugin leans
// on (ws's receiver, async context, streams, the collector the memory tests read) may change. Each release comes from
// npm's registry as the `node-<platform>-<arch>` package (the official binary, the one the `node` package installs),
// the highest version of its major, kept in `.node/` for the next run. On Node 22 and later it then runs test/newer-node/,
// the tests of clients that need it (`@directus/sdk` 19 on), which no top-level test file imports: Node 20's `npm test`
// never loads them. They exercise what the suite covers already, so they run without coverage.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const newestLts = '26'
// The first major `@directus/sdk` 19 on (`engines`) runs on.
const newerNode = 22
const root = fileURLToPath(new URL('..', import.meta.url))
const cache = join(root, '.node')

/** Runs `command`, its output on stderr, and returns what it printed on stdout. */
function run (command, args, options = {}) {
  const done = spawnSync(command, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options })
  if (done.error) throw done.error
  if (done.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${done.status}`)
  return done.stdout
}

const newer = (a, b) => {
  const [x, y] = [a, b].map(version => version.split('.').map(Number))
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]
}

/** The folder of the `node` binary of the highest release of `major`, fetched the first time. */
function binariesOf (major) {
  const name = `node-${process.platform}-${process.arch}`
  const found = JSON.parse(run('npm', ['view', `${name}@${major}`, 'version', '--json']) || '[]')
  const versions = [found].flat()
  if (versions.length === 0) throw new Error(`npm's registry has no ${name} of Node ${major}`)
  const version = versions.sort(newer).at(-1)
  const bin = join(cache, version, 'bin')
  if (existsSync(join(bin, 'node'))) return bin
  const download = mkdtempSync(join(cache, '.download-'))
  try {
    const [{ filename }] = JSON.parse(run('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', download]))
    run('tar', ['-xzf', join(download, filename), '-C', download, 'package/bin/node'])
    mkdirSync(join(cache, version), { recursive: true })
    try {
      renameSync(join(download, 'package', 'bin'), bin)
    } catch (error) {
      // Another run in this checkout (`npm run test:node` twice at once) put the same release there first.
      if (!existsSync(join(bin, 'node'))) throw error
    }
  } finally {
    rmSync(download, { recursive: true, force: true })
  }
  return bin
}

mkdirSync(cache, { recursive: true })
let failed = false
for (const major of process.argv.length > 2 ? process.argv.slice(2) : [newestLts]) {
  const bin = binariesOf(major)
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` }
  console.log(`# the suite on Node ${run(join(bin, 'node'), ['--version']).trim()}`)
  const suite = spawnSync('npm', ['run', 'test:unit'], { cwd: root, env, stdio: 'inherit' })
  failed ||= suite.status !== 0
  if (Number(major) < newerNode) continue
  console.log(`# test/newer-node on Node ${major}`)
  const newer = spawnSync('npm', ['run', 'tap', '--', '--disable-coverage', 'test/newer-node/*.test.ts'], { cwd: root, env, stdio: 'inherit' })
  failed ||= newer.status !== 0
}
process.exitCode = failed ? 1 : 0
