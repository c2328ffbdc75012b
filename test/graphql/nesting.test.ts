// Nesting (README, GraphQL limits): a document whose brackets, or a variable whose objects and lists, nest past 100 is
// refused before graphql-js reads it. Its parser and its input coercion recurse once a level and overflowed the stack
// within every other bound (a list literal 2,400 deep is 4,800 tokens): the socket closed 4500 and an error was logged,
// per frame, from any client in public mode. Now an `error` for the operation, the socket open, nothing logged.
import t, { type Test } from 'tap'
import { buildSchema } from 'graphql'
import { build } from '../helpers.js'
import { GraphqlSocket, type Frame } from '../hostile/graphql-socket.js'

// A Directus-style filter: an input type that nests in itself as deep as a client likes.
const schema = buildSchema(`
  input Filter { _and: [Filter], id: ID }
  type Query { items(filter: Filter, matrix: [[[Int]]]): String, node: Node }
  type Node { id: ID, node: Node }
`)
// buildSchema leaves its fields without resolvers: `items` answers null, once it has run.
const answered = (id: string): Frame[] => [{ id, type: 'next', payload: { data: { items: null } } }, { id, type: 'complete' }]
const refused = (id: string, message: string): Frame[] => [{ id, type: 'error', payload: [{ message }] }]
const documentTooDeep = 'Syntax Error: Query nesting limit of 100 exceeded.'

/** A filter `levels` deep: an object (`{ _and: ... }`) and its list in turn, the innermost `{ id: "1" }` or `[]`. */
function filter (levels: number): unknown {
  let value: unknown = levels % 2 === 0 ? [] : { id: '1' }
  for (let level = levels - 1; level >= 1; level--) value = level % 2 === 1 ? { _and: value } : [value]
  return value
}
/** The same as a GraphQL literal. */
const literal = (value: unknown) => JSON.stringify(value).replace(/"(\w+)":/g, '$1:')

/** A server in public mode on `schema` whose log lines at warn and above are kept, and a socket on it. */
async function served (t: Test, graphql: object = {}) {
  const lines: Array<{ level: number, msg: string }> = []
  const { url } = await build(t, { graphql: { auth: 'public', schema, ...graphql } },
    { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  const client = await GraphqlSocket.open(url('/graphql'))
  const result = async (id: string, query: string, variables?: Record<string, unknown>) => {
    client.client.send({ id, type: 'subscribe', payload: { query, variables } })
    await client.until(() => client.ended(id))
    return client.frames.get(id)
  }
  return { client, lines, result }
}

t.test('a document nesting 100 levels runs; 101 is refused with an error for its id', async t => {
  const { result, lines } = await served(t)
  // The selection set is the first level.
  t.same(await result('100', `{ items(filter: ${literal(filter(99))}) }`), answered('100'))
  t.same(await result('101', `{ items(filter: ${literal(filter(100))}) }`), refused('101', documentTooDeep))
  t.same(lines, [], 'nothing logged')
})

t.test('deeper than graphql-js\'s parser can recurse, within the token limit: refused, the socket open, nothing logged', async t => {
  // Raised: past 5,000 tokens the parser would refuse most of these itself.
  const { client, lines, result } = await served(t, { queryTokenLimit: 20_000 })
  const depth = 2400 // the review's: 4,800 tokens, under the default token limit too
  const documents: Record<string, string> = {
    'list literal': `{ items(matrix: ${'['.repeat(depth)}${']'.repeat(depth)}) }`,
    'object literal': `{ items(filter: ${'{_and: '.repeat(depth)}null${'}'.repeat(depth)}) }`,
    'selection sets': `{ ${'node { '.repeat(depth)}id${' }'.repeat(depth)} }`,
    'inline fragments': `{ ${'... { '.repeat(depth)}__typename${' }'.repeat(depth)} }`,
    'list types': `query ($m: ${'['.repeat(depth * 3)}Int${']'.repeat(depth * 3)}) { items }`
  }
  for (const [what, query] of Object.entries(documents)) t.same(await result(what, query), refused(what, documentTooDeep), what)
  t.same(lines, [], 'nothing logged at warn or above')
  await client.roundTrip()
  t.equal(client.client.ws.readyState, client.client.ws.OPEN, 'the socket stays open')
})

t.test('brackets in strings and comments are no nesting; the token limit still refuses a long document first', async t => {
  const { result } = await served(t)
  const brackets = '[{'.repeat(300)
  t.same(await result('strings', `{ items(filter: { id: "${brackets}" }) }`), answered('strings'), 'in a string')
  t.same(await result('block', `{ items(filter: { id: """${brackets}""" }) }`), answered('block'), 'in a block string')
  t.same(await result('comment', `{ # ${brackets}\n items }`), answered('comment'), 'in a comment')
  // 1,001 lists, none nested: lexed for its brackets, as far as the token limit.
  t.match(await result('long', `{ ${'items(matrix: [1]) '.repeat(1001)}}`), [{ type: 'error', payload: [{ message: /Document contains more (than|that) 5000 tokens/ }] }])
  t.match(await result('syntax', '{ items(filter: "unterminated) }'), [{ type: 'error', payload: [{ message: /Syntax Error: Unterminated string/ }] }],
    'a lexer error is the syntax error the parser would give')
})

t.test('variables nesting 100 levels run; 101 and the review\'s 2,500 are refused, the socket open, nothing logged', async t => {
  const { client, lines, result } = await served(t)
  const query = 'query ($f: Filter) { items(filter: $f) }'
  t.same(await result('100', query, { f: filter(100) }), answered('100'))
  const tooDeep = 'Variables nesting limit of 100 exceeded.'
  t.same(await result('101', query, { f: filter(101) }), refused('101', tooDeep))
  // 22 KB: under the max payload; graphql-js's input coercion overflowed the stack on it (the RangeError among the
  // result's errors, which graphql-ws failed to send).
  const deep = `{"id":"deep","type":"subscribe","payload":{"query":"${query}","variables":{"f":${'{"_and":'.repeat(2500)}{}${'}'.repeat(2500)}}}}`
  client.client.send(deep)
  await client.until(() => client.ended('deep'))
  t.same(client.frames.get('deep'), refused('deep', tooDeep))
  t.same(await result('list', query, { f: { id: '1' }, other: [[[[1]]]] }), answered('list'), 'other variables count too, and pass')
  t.same(lines, [], 'nothing logged at warn or above')
  await client.roundTrip()
  t.equal(client.client.ws.readyState, client.client.ws.OPEN, 'the socket stays open')
})
