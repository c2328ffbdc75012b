// The graphql the app loaded, checked at boot (lib/endpoints/graphql-version.ts): the endpoint leaves an
// introspection's depth to graphql-js's MaxIntrospectionDepthRule, which came with 16.9. On 16.8, one introspection of
// nested fragments on __Type (1,440 bytes, within every bound of the plugin) held the process 14.5 s and 871 MB.
import t from 'tap'
import * as graphql from 'graphql'
import { getIntrospectionQuery } from 'graphql'
import { referenceSchema } from '../../example/schema.js'
import { build } from '../helpers.js'
import { GraphqlSocket } from '../hostile/graphql-socket.js'
import { introspectionDepthRule } from '../../lib/endpoints/graphql-version.js'

t.test('a graphql without MaxIntrospectionDepthRule fails boot, naming the version found and the one needed', async t => {
  // The shape of graphql 16.8's module, as far as the check reads it: no such export.
  t.throws(() => introspectionDepthRule({ version: '16.8.1' }), {
    code: 'FST_REALTIME_INVALID_CONFIG',
    message: 'Invalid configuration: the GraphQL endpoint needs graphql 16.9 or later (^16.9.0 || ^17.0.0), whose MaxIntrospectionDepthRule bounds an introspection\'s depth: the app loaded graphql 16.8.1'
  })
  t.equal(introspectionDepthRule(), graphql.MaxIntrospectionDepthRule, `the installed graphql (${graphql.version}) has it`)
})

t.test('nested fragments on __Type are refused by it; the introspection clients send still answers', async t => {
  const { url } = await build(t, { graphql: { auth: 'public', schema: referenceSchema(() => null) } })
  const client = await GraphqlSocket.open(url('/graphql'))
  // The review's K = 9: about 4 times the work per level.
  const fragments = ['fragment T0 on __Type { name }']
  for (let k = 1; k <= 9; k++) {
    const spread = `...T${k - 1}`
    fragments.push(`fragment T${k} on __Type { name fields { type { ${spread} ofType { ${spread} ofType { ${spread} } } } } ofType { ${spread} } interfaces { ${spread} } possibleTypes { ${spread} } }`)
  }
  const bomb = `{ __schema { types { ...T9 } } } ${fragments.join(' ')}`
  t.equal(bomb.length, 1440)
  t.same(await client.result('bomb', bomb), [{ id: 'bomb', type: 'error', payload: [{ message: 'Maximum introspection depth exceeded' }] }])
  const introspection = await client.result('introspection', getIntrospectionQuery())
  t.match(introspection, [{ type: 'next', payload: { data: { __schema: { queryType: { name: 'Query' } } } } }, { type: 'complete' }])
})
