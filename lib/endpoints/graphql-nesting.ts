// How deep a `subscribe`'s document and variables nest, bounded before graphql-js walks them: its parser and its input
// coercion recurse once a level and run out of stack at about 1,500 to 2,000 levels. A list literal 2,000 deep is 4,000
// tokens, under the token limit; variables are no tokens at all.
import { Lexer, Source, TokenKind } from 'graphql'

/** The levels a document's `{` and `[` (selection sets, object and list values, list types), or a variable, may nest. */
export const nestingLimit = 100

/** Whether `query` holds more `{` and `[` than the limit, wherever they are: only then can it nest deeper. */
function manyBrackets (query: string): boolean {
  let brackets = 0
  for (let i = 0; i < query.length; i++) {
    const code = query.charCodeAt(i)
    if ((code === 0x7b || code === 0x5b) && ++brackets > nestingLimit) return true
  }
  return false
}

/**
 * Whether `query` nests deeper than the limit, by its tokens alone, read by graphql-js's lexer as its parser reads them
 * (a string or a comment holds no bracket). Stops past the token limit, where the parser refuses the document itself.
 * Lexed only when it has brackets enough: a lexing costs about what parsing does.
 */
export function documentTooDeep (query: string, tokenLimit: number): boolean {
  if (!manyBrackets(query)) return false
  const lexer = new Lexer(new Source(query))
  let depth = 0
  for (let tokens = 0; tokens <= tokenLimit; tokens++) {
    const { kind } = lexer.advance()
    if (kind === TokenKind.EOF) return false
    if (kind === TokenKind.BRACE_L || kind === TokenKind.BRACKET_L) {
      if (++depth > nestingLimit) return true
    } else if (kind === TokenKind.BRACE_R || kind === TokenKind.BRACKET_R) {
      depth--
    }
  }
  return false
}

/** Whether a value nests deeper than the limit below `level`, each object and list a level: at most that many frames. */
function tooDeep (value: unknown, level: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (level > nestingLimit) return true
  return Object.values(value).some(item => tooDeep(item, level + 1))
}

/** Whether a variable's value nests deeper than the limit (the variables' own map is no level). */
export function variablesTooDeep (variables: unknown): boolean {
  return tooDeep(variables, 0)
}
