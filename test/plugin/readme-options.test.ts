// The README's options tables ("Options and environment variables", and GraphQL's "Limits and options") are what
// users configure the plugin from: every option and variable the plugin reads is listed there, every one listed is
// read, and each default listed is the one the plugin resolves.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { environmentVariables, resolveConfig } from '../../lib/config.js'
import { optionPaths } from '../../lib/option-names.js'

const readme = readFileSync('README.md', 'utf8')

/** The text from the heading (or line) that starts with `from` to the next one that starts with `to`. */
function between (from: string, to: string): string {
  const start = readme.indexOf(from)
  return readme.slice(start, readme.indexOf(to, start + from.length))
}

const options = between('## Options and environment variables', '\n## ')
const graphql = between('| option (`graphql.`)', '\n\n')

const ticked = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map(match => match[1]!)
const cells = (row: string) => row.split(/(?<!\\)\|/).slice(1, -1).map(cell => cell.trim())
const rows = (table: string) => table.split('\n').filter(line => line.startsWith('| `')).map(cells)

/**
 * The variables named in `text`, in order: `_SECURE` after `SESSION_COOKIE_NAME` is `SESSION_COOKIE_SECURE` (a name's
 * last part replaced), as the tables abbreviate them.
 */
function variablesIn (text: string): string[] {
  const names: string[] = []
  let stem = ''
  for (const name of ticked(text)) {
    if (/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(name)) {
      names.push(name)
      stem = name.replace(/_[A-Z0-9]+$/, '')
    } else if (/^(_[A-Z0-9]+)+$/.test(name) && stem !== '') {
      names.push(stem + name)
    }
  }
  return names
}

/** The option a first cell names (`rest.enabled` (or `rest: false`)), and those it abbreviates (`.secure`). */
function optionsIn (cell: string, prefix = ''): string[] {
  const names: string[] = []
  let parent = ''
  for (const name of ticked(cell.replace(/\(or [^)]*\)/g, ''))) {
    if (name.startsWith('.')) {
      names.push(parent + name.slice(1))
    } else {
      names.push(prefix + name)
      parent = prefix + name.replace(/[^.]+$/, '')
    }
  }
  return names
}

const variables = environmentVariables()

t.test('every variable the plugin reads is in the README\'s tables, and every one there is read', async t => {
  const named = new Set(variablesIn(options + graphql))
  t.same(Object.keys(variables).filter(name => !named.has(name)), [], 'read, not documented')
  const listed = [...rows(options), ...rows(graphql)].flatMap(([, variable]) => variablesIn(variable ?? ''))
  t.same(listed.filter(name => !Object.hasOwn(variables, name)), [], 'documented, not read')
})

t.test('the variables Migration from Directus lists as read are those the plugin reads', async t => {
  // `WEBSOCKETS_REST_*`, `WEBSOCKETS_GRAPHQL_*`, `WEBSOCKETS_LOGS_*`: `_ENABLED`, `_PATH`, ...: each prefix takes the
  // suffixes listed after it.
  const migration = between('- The environment variables, with Directus\'s names', 'Nothing else is read')
  const prefixes = ticked(migration).filter(name => name.endsWith('_*')).map(name => name.slice(0, -2))
  const suffixes = ticked(migration.slice(0, migration.indexOf(';', migration.indexOf('*`:')))).filter(name => /^_[A-Z_]+$/.test(name))
  const named = new Set([...variablesIn(migration), ...prefixes.flatMap(prefix => suffixes.map(suffix => prefix + suffix))])
  t.same(Object.keys(variables).filter(name => !named.has(name)), [], 'read, not listed')
  t.same([...named].filter(name => !Object.hasOwn(variables, name)), [], 'listed, not read')
})

t.test('every option the plugin reads is in the README\'s tables, and every one there is read', async t => {
  const documented = new Set<string>()
  for (const [option, , , meaning] of rows(options)) {
    const names = optionsIn(option!)
    for (const name of names) documented.add(name)
    // An object of the plugin's own beside another kind, `true` or `{ prefix }`; `logs`' fields, "as `rest`'s".
    const fields = /^[a-zA-Z]+$/.test(names[0]!) ? /or `\{ ([a-z, ]+) \}`/.exec(meaning!)?.[1]!.split(', ') ?? [] : []
    for (const field of fields) documented.add(`${names[0]}.${field}`)
    if (names[0] === 'logs') for (const field of ticked(meaning!).filter(text => /^[a-z][A-Za-z]*$/.test(text) && text !== 'rest')) documented.add(`logs.${field}`)
  }
  for (const [option] of rows(graphql)) for (const name of optionsIn(option!, 'graphql.')) documented.add(name)
  const paths = optionPaths()
  // An options object of the plugin's own is documented by its fields.
  const undocumented = paths.filter(path => !documented.has(path) && !paths.some(other => other.startsWith(`${path}.`) && documented.has(other)))
  t.same(undocumented, [], 'read, not documented')
  t.same([...documented].filter(path => !paths.includes(path)), [], 'documented, not read')
})

t.test('each default in the README\'s tables is the one the plugin resolves', async t => {
  let compared = 0
  for (const [, variable, fallback] of [...rows(options), ...rows(graphql)]) {
    const names = variablesIn(variable ?? '')
    if (names.length !== 1) continue
    const name = names[0]!
    // `unlimited`, `required unless...`, or nothing: no default.
    const [given] = fallback!.startsWith('`') ? ticked(fallback!) : []
    t.equal(given, variables[name]?.default === undefined ? undefined : String(variables[name].default), name)
    compared++
  }
  t.ok(compared > 30, `${compared} defaults compared`)

  // The options no variable sets, as the plugin resolves them with nothing given.
  const config = await resolveConfig({ env: {} })
  const fallbackOf = (option: string) => ticked(rows(options).find(([name]) => optionsIn(name!)[0] === option)![2]!)[0]
  t.equal(fallbackOf('attemptLimit.points'), String(config.attemptLimit!.points))
  t.equal(fallbackOf('attemptLimit.durationSeconds'), String(config.attemptLimit!.durationSeconds))
  t.equal(fallbackOf('publicRole'), String(config.publicRole))
  t.equal(fallbackOf('authRoutes'), String(config.authRoutes ?? false))
})
