// GraphQL cost (PROTOCOL.md section 11): a document over the depth, alias or field limit is refused with an `error`
// message for its operation before graphql-js validates it (its OverlappingFieldsCanBeMerged is quadratic in
// repeated fields), and the socket stays open.
import t, { type Test } from 'tap'
import { buildSchema, parse, validate } from 'graphql'
import { referenceSchema } from '../../example/schema.js'
import { build } from '../helpers.js'
import { GraphqlSocket, type Frame } from './graphql-socket.js'
import { collect } from './gc.js'

const reference = referenceSchema(() => null)
// Nests as deep as a client likes.
const nested = buildSchema('type Query { node: Node } type Node { id: ID, node: Node }')

const cpuMs = ({ user, system }: NodeJS.CpuUsage) => (user + system) / 1000
const refused = (id: string, message: string): Frame[] => [{ id, type: 'error', payload: [{ message }] }]
const answered = (id: string, data: unknown): Frame[] => [{ id, type: 'next', payload: { data } }, { id, type: 'complete' }]
/** `{ node { node { ... { id } } } }`: `depth` fields deep. */
const deep = (depth: number) => `{ ${'node { '.repeat(depth - 1)}id${' }'.repeat(depth - 1)} }`
const aliased = (aliases: number) => `{ ${Array.from({ length: aliases }, (_, i) => `a${i}: node { id }`).join(' ')} }`
const fields = (count: number, field = '__typename') => `{ ${`${field} `.repeat(count)}}`

/**
 * 30 copies of `query` are refused with `message`, for a quarter of the CPU graphql-js takes to validate them: the bound
 * stops them before validation.
 */
async function refusedBeforeValidation (t: Test, query: string, message: string): Promise<void> {
  const { url } = await build(t, { graphql: { auth: 'public', schema: reference } })
  const attacker = await GraphqlSocket.open(url('/graphql'))
  // Measured on a server that has run a while: the first documents of a fresh process warm the JIT up, whatever they are.
  const warmUp = Array.from({ length: 30 }, (_, i) => `warm-up-${i}`)
  for (const id of warmUp) attacker.subscribe(id, query)
  await attacker.until(() => warmUp.every(id => attacker.ended(id)), 60_000)
  const ids = Array.from({ length: 30 }, (_, i) => `attack-${i}`)
  // CPU time, not the wall clock, against a yardstick measured beside it: a busy machine slows both alike. The garbage
  // of the tests before this one in the process is collected first: its collection would count here otherwise.
  collect()
  const cpu = process.cpuUsage()
  for (const id of ids) attacker.subscribe(id, query)
  await attacker.until(() => ids.every(id => attacker.ended(id)), 60_000)
  const spent = cpuMs(process.cpuUsage(cpu))
  // The yardstick, in the same process under the same load: graphql-js validating one such document.
  const document = parse(query)
  const before = process.cpuUsage()
  validate(reference, document)
  const oneValidation = cpuMs(process.cpuUsage(before))
  // Validated, they would cost 30 times that: a quarter of it leaves room for a busy machine's spread.
  t.ok(spent < ids.length * oneValidation / 4,
    `the process spent ${spent.toFixed(1)} ms of CPU on them, client included, against ${oneValidation.toFixed(1)} ms for graphql-js to validate one`)
  for (const id of ids) t.same(attacker.frames.get(id), refused(id, message), id)
  t.same(await attacker.result('after', '{ me { id } }'), answered('after', { me: null }), 'the socket stays open')
}

t.test('30 documents of 1,249 repeated fields are refused for a fraction of what validating them would cost', async t => {
  // 12 KB and 4,998 tokens: under the token limit (5000), and a valid query.
  await refusedBeforeValidation(t, `{ ${'me { id } '.repeat(1249)}}`, 'Syntax Error: Query field limit of 200 exceeded.')
})

t.test('30 documents of 60 fragments, each spreading all the ones before it, are refused as cheaply: spreads count as fields', async t => {
  // One field each, 1,770 spreads: about 3,600 tokens, under the token limit, and a valid query.
  const fragments = Array.from({ length: 60 }, (_, i) =>
    `fragment F${i} on Me { id ${Array.from({ length: i }, (_, j) => `...F${j}`).join(' ')} }`)
  await refusedBeforeValidation(t, `{ me { ...F59 } } ${fragments.join(' ')}`, 'Syntax Error: Query field limit of 200 exceeded.')
})

t.test('each limit refuses its document with an error for its id before graphql-js validation; the socket stays open', async t => {
  const { url } = await build(t, { graphql: { auth: 'public', schema: nested } })
  const client = await GraphqlSocket.open(url('/graphql'))
  t.same(await client.result('depth-10', deep(10)), answered('depth-10', { node: null }), 'depth 10 runs')
  t.same(await client.result('depth-11', deep(11)), refused('depth-11', 'Syntax Error: Query depth limit of 10 exceeded, found 11.'))
  t.same(await client.result('aliases-15', aliased(15)), answered('aliases-15', Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`a${i}`, null]))), '15 aliases run')
  t.same(await client.result('aliases-16', aliased(16)), refused('aliases-16', 'Syntax Error: Aliases limit of 15 exceeded, found 16.'))
  t.same(await client.result('fields-200', fields(200)), answered('fields-200', { __typename: 'Query' }), '200 fields run')
  t.same(await client.result('fields-201', fields(201)), refused('fields-201', 'Syntax Error: Query field limit of 200 exceeded.'))
  // 201 unknown fields: graphql-js would answer 100 "Cannot query field" errors, had it run.
  t.same(await client.result('unknown', fields(201, 'nope')), refused('unknown', 'Syntax Error: Query field limit of 200 exceeded.'),
    'only the limit: graphql-js never validated it')
  t.same(await client.result('after', '{ node { id } }'), answered('after', { node: null }), 'the socket stays open')
})

t.test('the limits come from the options and the environment', async t => {
  const { url } = await build(t, {
    env: { GRAPHQL_QUERY_DEPTH_LIMIT: '2', GRAPHQL_QUERY_ALIAS_LIMIT: '1' },
    graphql: { auth: 'public', schema: nested, queryFieldLimit: 5 }
  })
  const client = await GraphqlSocket.open(url('/graphql'))
  t.same(await client.result('depth', deep(3)), refused('depth', 'Syntax Error: Query depth limit of 2 exceeded, found 3.'))
  t.same(await client.result('aliases', aliased(2)), refused('aliases', 'Syntax Error: Aliases limit of 1 exceeded, found 2.'))
  t.same(await client.result('fields', fields(6)), refused('fields', 'Syntax Error: Query field limit of 5 exceeded.'))
  t.same(await client.result('within', '{ a: node { id } }'), answered('within', { a: null }))
  t.same(await client.result('fragment', '{ ...F } fragment F on Query { node { id } }'), answered('fragment', { node: null }),
    'a fragment adds no depth')
})
