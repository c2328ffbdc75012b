// The cost bounds of a GraphQL document (PROTOCOL.md section 11): fields, depth and aliases, checked before graphql-js
// validates it, since its OverlappingFieldsCanBeMerged is quadratic in repeated fields.
import { BREAK, GraphQLError, validate, visit, type DocumentNode, type GraphQLSchema, type ValidationContext } from 'graphql'
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases'
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth'

export interface CostLimits {
  queryDepthLimit: number
  queryAliasLimit: number
  queryFieldLimit: number
}

/** The refusals of a document past a cost bound; none when it is within them all. */
export type CostCheck = (schema: GraphQLSchema, document: DocumentNode) => readonly GraphQLError[]

// graphql-armor throws its refusal by default, and validate() passes a throw on: reported, it is a validation error.
// Made anew with the app's graphql: graphql-armor's is another copy when the app's is not ^16.10, and graphql-ws takes
// another copy's error for a broken hook (it closes the socket, 4500). The refusal is a message alone.
const reported = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context!.reportError(new GraphQLError(error.message))]
}

/**
 * Whether the document has more than `limit` fields and fragment spreads, each counted where it is written. Stops
 * counting there. A spread counts as a field: fragments spreading each other make graphql-js's checks walk every path
 * through them (60 fragments of one field, each spreading all the ones before it, took 50 to 100 ms to validate).
 */
function overFieldLimit (document: DocumentNode, limit: number): boolean {
  let fields = 0
  const count = () => ++fields > limit ? BREAK : undefined
  visit(document, { Field: count, FragmentSpread: count })
  return fields > limit
}

export function costCheck (limits: CostLimits): CostCheck {
  const rules = [
    // Depth counts nested fields: a fragment is no deeper than the fields it stands for.
    maxDepthRule({ n: limits.queryDepthLimit, flattenFragments: true, ...reported }),
    maxAliasesRule({ n: limits.queryAliasLimit, ...reported })
  ]
  // Worded like graphql-armor's refusals and graphql-js's token limit, so that all four read alike.
  const tooManyFields = [new GraphQLError(`Syntax Error: Query field limit of ${limits.queryFieldLimit} exceeded.`)]

  return function check (schema, document) {
    // Fields by a plain walk that stops at the limit: any validation pass walks the whole document, type-aware, and
    // costs an attack document of 1,249 repeated fields ten times as much.
    if (overFieldLimit(document, limits.queryFieldLimit)) return tooManyFields
    return validate(schema, document, rules)
  }
}
