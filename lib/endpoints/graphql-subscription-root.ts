// The GraphQL spec's rule since 2022, which graphql-js 17 checks and 16 does not: a subscription's root selection takes
// no `@skip` or `@include`. graphql 16 runs one whose root fields are all skipped and throws a TypeError from inside
// `subscribe`, which would read as the app's schema failing (logged as an error, the socket closed 4500).
import { GraphQLError, Kind, type ASTVisitor, type SelectionSetNode, type ValidationContext } from 'graphql'

const conditional = new Set(['skip', 'include'])

export function NoSkipAtSubscriptionRoot (context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition (operation) {
      if (operation.operation !== 'subscription') return
      const seen = new Set<string>()
      const uses = (selections: SelectionSetNode): boolean => selections.selections.some(selection => {
        if (selection.directives?.some(directive => conditional.has(directive.name.value))) return true
        if (selection.kind === Kind.INLINE_FRAGMENT) return uses(selection.selectionSet)
        if (selection.kind !== Kind.FRAGMENT_SPREAD || seen.has(selection.name.value)) return false
        seen.add(selection.name.value)
        const fragment = context.getFragment(selection.name.value)
        return fragment !== null && fragment !== undefined && uses(fragment.selectionSet)
      })
      if (!uses(operation.selectionSet)) return
      const name = operation.name ? `Subscription "${operation.name.value}"` : 'Anonymous Subscription'
      context.reportError(new GraphQLError(`${name} must not use \`@skip\` or \`@include\` directives in the top level selection.`, { nodes: operation }))
    }
  }
}
