// `npm run test:node [-- <major or version>...]`: the tap suite (`npm run test:unit`) again under other Node releases, the newest
// LTS by default. The package says Node 20.12 or newer and apps deploy on the newer lines, where what the plugin leans
// on (ws's receiver, async context, streams, the collector the memory tests read) may change. Each release comes from
// npm's registry as the `node-<platform>-<arch>` package (the official binary, the one the `node` package installs),
// the highest version of its major, kept in `.node/` for the next run. On Node 22 and later it then runs test/newer-node/,
// the tests of clients that need it (`@directus/sdk` 19 on), which no top-level test file imports: Node 20's `npm test`
// never loads them. They exercise what the suite covers already, so they run without coverage.
import { spawnSync } from 'node:child_process'
import { delimiter, join } from 'node:path'
import { binariesOf, highestOf, root, run } from './node-release.js'

const newestLts = '26'
// The first major `@directus/sdk` 19 on (`engines`) runs on.
const newerNode = 22

let failed = false
for (const major of process.argv.length > 2 ? process.argv.slice(2) : [newestLts]) {
  const bin = binariesOf(highestOf(major))
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` }
  console.log(`# the suite on Node ${run(join(bin, 'node'), ['--version']).trim()}`)
  const suite = spawnSync('npm', ['run', 'test:unit'], { cwd: root, env, stdio: 'inherit' })
  failed ||= suite.status !== 0
  if (Number(major.split('.')[0]) < newerNode) continue
  console.log(`# test/newer-node on Node ${major}`)
  const newer = spawnSync('npm', ['run', 'tap', '--', '--disable-coverage', 'test/newer-node/*.test.ts'], { cwd: root, env, stdio: 'inherit' })
  failed ||= newer.status !== 0
}
process.exitCode = failed ? 1 : 0
