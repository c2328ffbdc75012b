// `npm run test:lowest [-- <node version>... <package>@<version>...]`: the tap suite on the oldest of everything package.json says the package
// takes, as an app on an old lockfile or on the oldest Node has it: every dependency and peer at the floor of its range
// (`^5.0.0` is 5.0.0, `^16.9.0 || ^17.0.0` is 16.9.0; their own dependencies as npm resolves them), on the release
// `engines.node` names (20.12.0), fetched from npm's registry as `npm run test:node` does. The development
// dependencies stay as they are, but for the peers (fastify, graphql), which go to their floors too. A
// `<package>@<version>` argument takes that version instead of the floor: `graphql@17.0.0`, the floor of graphql's other
// major.
// The checkout is copied into `.lowest/tree/` (git-ignored), installed there once per package.json and lockfile, and
// its suite run without coverage (that is `npm test`'s, on the lockfile).
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { binariesOf, root, run } from './node-release.js'

const tree = join(root, '.lowest', 'tree')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

/** The lowest version `range` takes: its first alternative, a caret, tilde, `>=` or exact version. */
function floorOf (range) {
  const found = /^(?:\^|~|>=)?\s*(\d+\.\d+\.\d+)$/.exec(range.split('||')[0].trim())
  if (!found) throw new Error(`no floor read from "${range}": teach scripts/test-lowest.js its form`)
  return found[1]
}

const chosen = process.argv.slice(2).filter(argument => /^@?[^@]+@\d/.test(argument))
const nodes = process.argv.slice(2).filter(argument => !chosen.includes(argument))
const floors = Object.fromEntries([...Object.entries(pkg.dependencies), ...Object.entries(pkg.peerDependencies)]
  .map(([name, range]) => [name, floorOf(range)]))
for (const argument of chosen) {
  const at = argument.lastIndexOf('@')
  if (!(argument.slice(0, at) in floors)) throw new Error(`${argument.slice(0, at)} is no dependency or peer of the package`)
  floors[argument.slice(0, at)] = argument.slice(at + 1)
}
const lowest = {
  ...pkg,
  dependencies: Object.fromEntries(Object.keys(pkg.dependencies).map(name => [name, floors[name]])),
  devDependencies: Object.fromEntries(Object.entries(pkg.devDependencies).map(([name, range]) => [name, floors[name] ?? range])),
  // What the README's "Testing your app" tells an app on Node 20 before 20.19 to pin: the newest light-my-request
  // (Fastify's `inject`) and @fastify/static (mercurius's, a development dependency) `require()` ES modules there.
  overrides: { 'light-my-request': '6.6.0', '@fastify/static': '10.1.3' }
}

// The copy: the checkout's files (tracked, and new ones not ignored), over what the last run left but node_modules.
mkdirSync(tree, { recursive: true })
for (const entry of readdirSync(tree)) if (entry !== 'node_modules') rmSync(join(tree, entry), { recursive: true, force: true })
const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard']).split('\0').filter(Boolean)
for (const file of files) if (existsSync(join(root, file))) cpSync(join(root, file), join(tree, file))
const manifest = `${JSON.stringify(lowest, null, 2)}\n`
writeFileSync(join(tree, 'package.json'), manifest)

const key = createHash('sha256').update(manifest).update(readFileSync(join(root, 'package-lock.json'))).update(process.version).digest('hex')
const installed = join(tree, 'node_modules', '.lowest-key')
if (!existsSync(installed) || readFileSync(installed, 'utf8') !== key) {
  console.log('# installing the floors in .lowest/tree')
  rmSync(join(tree, 'node_modules'), { recursive: true, force: true })
  run('npm', ['install', '--no-audit', '--no-fund'], { cwd: tree, stdio: ['ignore', 'inherit', 'inherit'] })
  writeFileSync(installed, key)
}
for (const [name, version] of Object.entries(floors)) {
  const found = JSON.parse(readFileSync(join(tree, 'node_modules', name, 'package.json'), 'utf8')).version
  if (found !== version) throw new Error(`${name} installed at ${found}, not its floor ${version}`)
}
console.log(`# floors: ${Object.entries(floors).map(([name, version]) => `${name}@${version}`).join(' ')}`)

run('npm', ['run', 'build:test'], { cwd: tree, stdio: ['ignore', 'inherit', 'inherit'] })
let failed = false
for (const version of nodes.length > 0 ? nodes : [floorOf(pkg.engines.node)]) {
  const bin = binariesOf(version)
  // argon2's addon is built by the Node that installs: one of another major cannot load it.
  const major = run(join(bin, 'node'), ['-p', 'process.versions.modules']).trim()
  if (major !== process.versions.modules) throw new Error(`run npm run test:lowest with Node ${version.split('.')[0]}, the major it tests on`)
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` }
  console.log(`# the suite on the floors, Node ${run(join(bin, 'node'), ['--version']).trim()}`)
  const suite = spawnSync(join(tree, 'node_modules', '.bin', 'tap'), ['--disable-coverage'], { cwd: tree, env, stdio: 'inherit' })
  failed ||= suite.status !== 0
}
process.exitCode = failed ? 1 : 0
