// The reference server's GraphQL schema (PROTOCOL.md section 9): who the socket is, and a subscription that ticks.
import {
  GraphQLBoolean, GraphQLError, GraphQLID, GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString
} from 'graphql'
import type { Accountability, GraphqlContext } from '../lib/index.js'

export interface Me {
  id: string
  email: string | null
  role: string | null
  admin: boolean
}

const done: IteratorReturnResult<undefined> = { value: undefined, done: true }

/**
 * 1, 2, 3, ... one every `every` milliseconds. An iterator rather than an async generator: a generator's `return`
 * waits for the pending tick, so a completed or closed subscription would hold its timer that long; this one
 * clears it at once.
 */
export function ticks (every: number): AsyncIterableIterator<number> {
  let count = 0
  let timer: NodeJS.Timeout | undefined
  let settle: ((result: IteratorResult<number>) => void) | undefined
  let ended = false
  return {
    next () {
      if (ended) return Promise.resolve(done)
      return new Promise(resolve => {
        settle = resolve
        timer = setTimeout(() => resolve({ value: ++count, done: false }), every)
      })
    },
    return () {
      ended = true
      clearTimeout(timer)
      settle?.(done) // a tick still awaited ends the loop waiting on it; a settled promise ignores this
      return Promise.resolve(done)
    },
    [Symbol.asyncIterator] () {
      return this
    }
  }
}

/** `me` answers what `me(accountability, context)` says: null for the public accountability. */
export function referenceSchema (me: (accountability: Accountability, context: GraphqlContext) => Me | null): GraphQLSchema {
  const Me = new GraphQLObjectType({
    name: 'Me',
    fields: {
      id: { type: new GraphQLNonNull(GraphQLID) },
      // null for a provider's user whose token carries no email
      email: { type: GraphQLString },
      role: { type: GraphQLString },
      admin: { type: new GraphQLNonNull(GraphQLBoolean) }
    }
  })
  return new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        me: { type: Me, resolve: (_root, _args, context: GraphqlContext) => me(context.accountability, context) }
      }
    }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        ticks: {
          type: new GraphQLNonNull(GraphQLInt),
          args: { every: { type: GraphQLInt, defaultValue: 1000 } },
          subscribe: (_root, { every }: { every: number | null }) => {
            // An explicit null or a zero would tick as fast as the event loop turns.
            if (every === null || every < 1) throw new GraphQLError('"every" must be at least 1 (milliseconds).')
            return ticks(every)
          },
          resolve: (tick: number) => tick
        }
      }
    })
  })
}
