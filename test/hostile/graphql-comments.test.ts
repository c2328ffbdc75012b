// A subscription's document is kept as long as it runs. graphql-js's token limit does not count comments, and a
// document parsed with locations keeps every token it was lexed into, comments included: 64 KiB of `#` lines under the
// limit kept about 2 MB of heap per subscription. Parsed without locations, a subscription keeps what its frame
// brought (graphql-ws holds the frame and its message while it runs), bounded by the max payload.
import t from 'tap'
import { referenceSchema } from '../../example/schema.js'
import { build } from '../helpers.js'
import { GraphqlSocket } from './graphql-socket.js'
import { retainedBytes } from './gc.js'

const subscriptions = 20
// Just under the 64 KiB max payload as a subscribe frame, and three tokens past the subscription's own.
const query = 'subscription { ticks(every: 10000000) }' + '#\n'.repeat(21_000)

t.test('subscriptions whose documents are mostly comments keep no more than their frames', async t => {
  const { url } = await build(t, { heartbeat: { enabled: false }, graphql: { auth: 'public', schema: referenceSchema(() => null) } })
  const client = await GraphqlSocket.open(url('/graphql'))
  const before = retainedBytes()
  const ids = Array.from({ length: subscriptions }, (_, i) => `c${i}`)
  for (const id of ids) client.subscribe(id, query)
  await client.roundTrip()
  const perSubscription = (retainedBytes() - before) / subscriptions
  t.equal(ids.filter(id => client.ended(id)).length, 0, 'every one runs: comments are no tokens')
  t.equal(client.client.ws.readyState, client.client.ws.OPEN, 'the socket stays open')
  // Twice the frame (about 126 KiB) and the subscription itself, with room to spare.
  t.ok(perSubscription < 320 * 1024, `the server kept ${Math.round(perSubscription / 1024)} KiB per subscription`)
  await client.client.close()
})
