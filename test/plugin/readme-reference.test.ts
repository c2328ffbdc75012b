// The README's reference tables against the code: the errors table against lib/errors.ts (every code with its message,
// HTTP status and close codes), `CloseCode` as listed, and the types table against every type the package exports.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { CloseCode } from '../../lib/index.js'
import { failures } from '../../lib/errors.js'

const readme = readFileSync('README.md', 'utf8')

function between (from: string, to: string): string {
  const start = readme.indexOf(from)
  return readme.slice(start, readme.indexOf(to, start + from.length))
}

const cells = (row: string) => row.split(/(?<!\\)\|/).slice(1, -1).map(cell => cell.trim())

t.test('every code of lib/errors.ts is a row of the errors table, with its message, status and closes', async t => {
  const table = between('| code | message | HTTP |', '\n\n')
  const rows = new Map(table.split('\n').slice(2).map(cells).map(row => [row[0]!, row]))
  for (const [code, rule] of Object.entries(failures) as [string, (typeof failures)[keyof typeof failures]][]) {
    const row = rows.get(`\`${code}\``)
    if (!t.ok(row, `${code} has a row`)) continue
    const [, message, http, json, graphqlSocket] = row!
    if (typeof rule.message === 'string') t.ok(message!.includes(`\`${rule.message}\``), `${code}: its message`)
    if (typeof rule.status === 'number') t.ok(http!.includes(String(rule.status)), `${code}: HTTP ${rule.status}`)
    for (const closes of [rule.closes, rule.endsHandshake?.closes]) {
      if (closes !== undefined) t.ok(json!.includes(`closes ${closes}`), `${code}: closes ${closes} on a JSON socket`)
    }
    if (rule.endsHandshake?.message) t.ok(message!.includes(`\`${rule.endsHandshake.message}\``), `${code}: its message ending a handshake`)
    if (rule.graphql) {
      const told = `closes ${rule.graphql.closes}` + (rule.graphql.reason ? ` \`${rule.graphql.reason}\`` : '')
      t.ok(graphqlSocket!.includes(told) || (code === 'REQUESTS_EXCEEDED' && graphqlSocket!.includes(String(rule.graphql.closes))), `${code}: ${told} on /graphql`)
    }
  }
})

t.test('CloseCode is listed as it is', async t => {
  const listed = between('- **`CloseCode`**', '\n\n')
  const named = Object.fromEntries([...listed.matchAll(/`([A-Za-z]+)` (\d+)/g)].map(([, name, code]) => [name, Number(code)]))
  t.same(named, CloseCode)
})

t.test('the types table lists every type the package exports, and only those', async t => {
  const declared = ['types/index.ts', 'types/jwt.ts', 'lib/index.ts'].flatMap(file =>
    [...readFileSync(file, 'utf8').matchAll(/^export (?:type|interface) (\w+)|^export \{[^}]*\btype (\w+)/gm)].map(match => match[1] ?? match[2]!))
  const table = between('### Types', '\n## ')
  // The types column, each name first in its item (`IoredisClient` (the ioredis client or `Cluster`...)).
  const items = table.split('\n').slice(2).filter(line => line.startsWith('|')).flatMap(row => cells(row)[1]!.replace(/\([^)]*\)/g, '').split(', '))
  const listed = new Set(items.map(item => /^`([A-Z]\w+)`/.exec(item.trim())?.[1]).filter(name => name !== undefined))
  t.same(declared.filter(name => !listed.has(name)), [], 'exported, not listed')
  t.same([...listed].filter(name => !declared.includes(name)), [], 'listed, not exported')
})
