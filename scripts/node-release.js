// Official Node binaries from npm's registry, for `npm run test:node` and `npm run test:lowest`: the
// `node-<platform>-<arch>` package of a release (the binary the `node` package installs), kept in `.node/<version>/`
// for the next run.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('..', import.meta.url))
const cache = join(root, '.node')
const name = `node-${process.platform}-${process.arch}`

/** Runs `command`, its output on stderr, and returns what it printed on stdout. */
export function run (command, args, options = {}) {
  const done = spawnSync(command, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options })
  if (done.error) throw done.error
  if (done.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${done.status}`)
  return done.stdout
}

const newer = (a, b) => {
  const [x, y] = [a, b].map(version => version.split('.').map(Number))
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]
}

/** The highest release of `major` (or of any range npm takes) on npm's registry. */
export function highestOf (major) {
  const found = JSON.parse(run('npm', ['view', `${name}@${major}`, 'version', '--json']) || '[]')
  const versions = [found].flat()
  if (versions.length === 0) throw new Error(`npm's registry has no ${name} of Node ${major}`)
  return versions.sort(newer).at(-1)
}

/** The folder of the `node` binary of release `version` (exact), fetched the first time. */
export function binariesOf (version) {
  const bin = join(cache, version, 'bin')
  if (existsSync(join(bin, 'node'))) return bin
  mkdirSync(cache, { recursive: true })
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
