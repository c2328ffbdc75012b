// The README as a user reads it: its TypeScript blocks, each made a module a user could paste into an app, and the
// anchors of its links. A block is written as the README writes it; what it leaves to the reader's app (an `app`, a
// `db`, the imports an earlier block made) comes from `context.ts`, imported only for the names the block uses and
// neither imports nor declares (none, for a block that makes its own `app`: it is a whole program). A block that
// imports `./x.js` is checked beside the block that exports those names, written as `x.ts` (provider-keys.ts and
// token-kind.ts are blocks of the README).

/**
 * A fenced block of the README: its language, the line its code starts on, the line of its closing fence (or the
 * text's last line), and its code (de-indented).
 */
export interface Block { lang: string, line: number, end: number, code: string }

/**
 * The fenced blocks of a Markdown text as CommonMark reads them: a fence is three or more backticks or tildes, its
 * language the first word of what follows; it ends at a fence of the same character at least as long with nothing
 * after it, or at the end of the text. (A longer fence can hold a shorter one, as a README showing Markdown does.)
 */
export function blocksOf (markdown: string): Block[] {
  const blocks: Block[] = []
  let open: { fence: string, lang: string, line: number, indent: string, lines: string[] } | null = null
  // Each line loses up to the opening fence's indentation.
  const close = (block: NonNullable<typeof open>, end: number) => {
    const code = block.lines.map(line => line.slice(Math.min(block.indent.length, /^\s*/.exec(line)![0].length)))
    blocks.push({ lang: block.lang, line: block.line, end, code: code.join('\n') })
  }
  for (const [index, text] of markdown.split('\n').entries()) {
    if (open === null) {
      // A backtick fence's info string has no backtick (`` ```a``` `` is inline code).
      const fence = /^(\s*)(`{3,}(?=[^`]*$)|~{3,})\s*(\S*)/.exec(text)
      if (fence) open = { fence: fence[2]!, lang: fence[3]!.toLowerCase() || 'text', line: index + 2, indent: fence[1]!, lines: [] }
      continue
    }
    const closing = /^\s*(`{3,}|~{3,})\s*$/.exec(text)
    if (closing && closing[1]![0] === open.fence[0] && closing[1]!.length >= open.fence.length) {
      close(open, index + 1)
      open = null
    } else open.lines.push(text)
  }
  if (open !== null) close(open, markdown.split('\n').length)
  return blocks
}

/** The lines of a Markdown text outside its fenced blocks. */
function prose (markdown: string): string {
  const lines = markdown.split('\n')
  // From the opening fence (the line before the code) to the closing one.
  for (const block of blocksOf(markdown)) lines.fill('', block.line - 2, block.end)
  return lines.join('\n')
}

/** GitHub's anchor for each heading of a Markdown text (code blocks left out), with its `-1`, `-2` for repeats. */
export function anchorsOf (markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, heading] of prose(markdown).matchAll(/^ {0,3}#{1,6}\s+(.*)$/gm)) {
    const slug = heading!.replace(/\s+#+\s*$/, '').trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    const repeats = seen.get(slug) ?? 0
    seen.set(slug, repeats + 1)
    anchors.add(repeats === 0 ? slug : `${slug}-${repeats}`)
  }
  return anchors
}

/** Where a name comes from when a block uses it without importing or declaring it. */
const sources: Record<string, string> = {
  realtime: "import realtime from 'fastify-realtime'",
  Fastify: "import Fastify from 'fastify'",
  WebSocket: "import WebSocket from 'ws'",
  createClient: "import { createClient } from 'graphql-ws'",
  GraphQLObjectType: "import { GraphQLObjectType } from 'graphql'",
  GraphQLSchema: "import { GraphQLSchema } from 'graphql'",
  GraphQLString: "import { GraphQLString } from 'graphql'",
  fastifyJwt: "import fastifyJwt from '@fastify/jwt'",
  fastifyWebsocket: "import fastifyWebsocket from '@fastify/websocket'",
  mercurius: "import mercurius from 'mercurius'",
  Redis: "import { Redis } from 'ioredis'"
}

/** What the README's fragments take from the app around them (type-checked only, never run). */
export const context = `import Fastify from 'fastify'
import { authentication, createDirectus, realtime } from '@directus/sdk'

export const app = Fastify()
export const secret = 'a-readme-test-secret-of-32-characters'
export const users = [{ email: 'admin@example.com', password: 'change me', admin: true }]
export const schema = 'type Query { hello: String }'
export const resolvers = {}
export const accessToken = 'eyJ...'
export declare const db: any
export declare function getFreshAccessToken (): Promise<string>
export declare function isBanned (user: string | null): Promise<boolean>
export declare function loadPermissions (user: string | null): Promise<string[]>
// The handshake example's client.
export const client = createDirectus('http://127.0.0.1:8055').with(authentication('json')).with(realtime({ authMode: 'handshake' }))
`
const contextNames = [...context.matchAll(/^export (?:declare )?(?:const|function) (\w+)/gm)].map(match => match[1]!)

// A comment's words are no use of a name (a `//` after `:` is a URL's).
const uses = (code: string, name: string) => new RegExp(`(?<![\\w.'"])${name}\\b`).test(code.replace(/(?<!:)\/\/.*$/gm, ''))
const imports = (code: string, name: string) => new RegExp(`^import\\b[^;]*?\\b${name}\\b[^;]*?from`, 'm').test(code)
const declares = (code: string, name: string) =>
  new RegExp(`^(?:export )?(?:const|let|var|function|async function|class|interface|type) ${name}\\b`, 'm').test(code)

/**
 * The README's TypeScript blocks as files: `{ 'readme-<line>.ts': code }` (or the name another block imports it
 * by), `context.ts`, and the packages they import that are not installed (blocks importing one are left out).
 */
export function typeScriptFiles (markdown: string, exported: string[], installed: (name: string) => boolean):
{ files: Record<string, string>, missing: string[] } {
  const files: Record<string, string> = { 'context.ts': context }
  const missing = new Set<string>()
  const blocks = blocksOf(markdown).filter(block => block.lang === 'ts')
  const fileOf = new Map<Block, string>(blocks.map(block => [block, `readme-${block.line}.ts`]))
  // Local imports name the block that exports what they import.
  for (const block of blocks) {
    for (const [, names, file] of block.code.matchAll(/^import \{([^}]+)\} from '\.\/([\w-]+)\.js'/gm)) {
      const name = names!.split(',')[0]!.trim()
      const exporter = blocks.find(other => new RegExp(`^export (?:function|const|class) ${name}\\b`, 'm').test(other.code))
      if (exporter) fileOf.set(exporter, `${file}.ts`)
    }
  }
  for (const block of blocks) {
    const packages = [...block.code.matchAll(/^import\b[^;]*?from '([^.'][^']*)'/gm)]
      .map(match => match[1]!.startsWith('@') ? match[1]!.split('/').slice(0, 2).join('/') : match[1]!.split('/')[0]!)
      .filter(name => !name.startsWith('node:') && !installed(name))
    if (packages.length > 0) {
      for (const name of packages) missing.add(name)
      continue
    }
    const free = (name: string) => uses(block.code, name) && !imports(block.code, name) && !declares(block.code, name)
    const added = [
      ...Object.keys(sources).filter(free).map(name => sources[name]!),
      ...exported.filter(free).map(name => `import { ${name} } from 'fastify-realtime'`),
      ...(declares(block.code, 'app') ? [] : contextNames.filter(free).map(name => `import { ${name} } from './context.js'`))
    ]
    files[fileOf.get(block)!] = `${added.join('\n')}\n// README.md line ${block.line}\n${block.code}\nexport {}\n`
  }
  return { files, missing: [...missing].sort() }
}
