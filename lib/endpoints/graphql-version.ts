// The graphql the app loaded, checked once at boot. The endpoint leaves an introspection's depth to graphql-js's
// MaxIntrospectionDepthRule (graphql-armor's depth rule skips `__schema`), which came with graphql 16.9: before it, one
// introspection of nested fragments on __Type, 1.4 KB, held the process 14.5 s and 871 MB.
import * as installed from 'graphql'
import type { ValidationRule } from 'graphql'
import { InvalidConfigError } from '../errors.js'

/** What the check reads of a graphql module: the app's, or one a test makes up. */
export interface GraphqlModule {
  version: string
  MaxIntrospectionDepthRule?: ValidationRule
}

/** graphql-js's bound on an introspection's depth; without it, boot fails. A namespace import: 16.8 lacks the export. */
export function introspectionDepthRule (graphql: GraphqlModule = installed): ValidationRule {
  const rule = graphql.MaxIntrospectionDepthRule
  if (typeof rule !== 'function') {
    throw new InvalidConfigError(`the GraphQL endpoint needs graphql 16.9 or later (^16.9.0 || ^17.0.0), whose MaxIntrospectionDepthRule bounds an introspection's depth: the app loaded graphql ${graphql.version}`)
  }
  return rule
}
