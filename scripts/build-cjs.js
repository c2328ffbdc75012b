// The CommonJS half of the package, for `require('fastify-realtime')` (Node 20 before 20.19 cannot `require()` an ES
// module). It runs after tsc: dist/lib/ and dist/types/, already type-checked, are turned into CommonJS one file at a
// time into dist/cjs/ (a second tsc run would take as long as the first), their declarations copied beside them. Then
// the entry, as the official Fastify plugins export themselves: `module.exports = plugin`, with `default`,
// `fastifyRealtime` and every named export on it.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const cjs = join(dist, 'cjs')

for (const dir of ['lib', 'types']) {
  for (const file of readdirSync(join(dist, dir), { recursive: true, encoding: 'utf8' })) {
    const from = join(dist, dir, file)
    const to = join(cjs, dir, file)
    if (!file.endsWith('.js') && !file.endsWith('.d.ts')) continue
    mkdirSync(dirname(to), { recursive: true })
    if (file.endsWith('.d.ts')) {
      copyFileSync(from, to)
      continue
    }
    const { outputText } = ts.transpileModule(readFileSync(from, 'utf8'), {
      fileName: from,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true }
    })
    writeFileSync(to, outputText)
  }
}

// Node reads dist/cjs/**/*.js as CommonJS, and TypeScript reads the declarations beside them as CommonJS ones.
writeFileSync(join(cjs, 'package.json'), JSON.stringify({ type: 'commonjs' }, null, 2) + '\n')

writeFileSync(join(cjs, 'index.js'), `'use strict'
// require('fastify-realtime'): the plugin itself, with its named exports on it.
const lib = require('./lib/index.js')

const plugin = lib.default
for (const name of Object.keys(lib)) {
  if (name !== 'default') Object.defineProperty(plugin, name, { value: lib[name], enumerable: true, configurable: true })
}
module.exports = plugin
module.exports.default = plugin
module.exports.fastifyRealtime = plugin
`)

writeFileSync(join(cjs, 'index.d.ts'), `export * from './lib/index.js'
export { default, default as fastifyRealtime } from './lib/index.js'
`)
