// The scenarios of test/sdk-scenarios.ts with `@directus/sdk` 18, the newest that runs on Node 20; and the README's
// SDK code, checked against what they run.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { authentication, createDirectus, realtime, staticToken } from '@directus/sdk'
import { sdkScenarios } from '../sdk-scenarios.js'

sdkScenarios({ createDirectus, authentication, realtime, staticToken, login: (client, email, password) => client.login(email, password) })

t.test('the README shows the NodeWebSocket and the AUTH_REVOKED listener the tests use, as they are', async t => {
  const readme = readFileSync('README.md', 'utf8')
  const helper = readFileSync('test/node-websocket.ts', 'utf8')
  t.ok(readme.includes(helper.slice(helper.indexOf('// ws, delivering')).replace('export class', 'class')), 'NodeWebSocket')
  const self = readFileSync('test/sdk-scenarios.ts', 'utf8')
  const listener = self.slice(self.indexOf("    client.onWebSocket('open', function () {"), self.indexOf('    await client.connect()\n\n    const closed'))
  t.ok(readme.includes(listener.replace(/^ {4}/gm, '')), 'the AUTH_REVOKED listener')
})
