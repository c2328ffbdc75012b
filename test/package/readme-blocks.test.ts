// The README's blocks and anchors are read as CommonMark (and GitHub) read them: a block the reader sees as code is
// type-checked as code, and a heading inside one is no anchor.
import t from 'tap'
import { anchorsOf, blocksOf } from './readme-blocks.js'

t.test('fences of backticks or tildes, three or more, with an info string, closed by one as long or longer', async t => {
  const markdown = [
    '```ts title="app.ts"', // 1
    'const a = 1',
    '```',
    '~~~TS',
    'const b = 2',
    '~~~~',
    '````md',
    '```ts',
    'const inner = 3',
    '```',
    '````',
    '  ```ts',
    '    indented()',
    ' less()',
    '  ```',
    'Inline ```code``` is no fence.',
    '```',
    'never closed'
  ].join('\n')
  t.same(blocksOf(markdown), [
    { lang: 'ts', line: 2, end: 3, code: 'const a = 1' },
    { lang: 'ts', line: 5, end: 6, code: 'const b = 2' },
    { lang: 'md', line: 8, end: 11, code: '```ts\nconst inner = 3\n```' },
    { lang: 'ts', line: 13, end: 15, code: '  indented()\nless()' },
    { lang: 'text', line: 18, end: 18, code: 'never closed' }
  ])
})

t.test('a fence closes only with its own character, and nothing after it', async t => {
  const blocks = blocksOf(['~~~', '```', '``` js', '~~~', '```', '```'].join('\n'))
  t.same(blocks, [
    { lang: 'text', line: 2, end: 4, code: '```\n``` js' },
    { lang: 'text', line: 6, end: 6, code: '' }
  ])
})

t.test('anchors: headings outside blocks only, closing #s dropped, repeats numbered', async t => {
  const markdown = [
    '# Install',
    '````md',
    '## Inside a block',
    '```',
    '## Still inside',
    '````',
    '## Scaling out ##',
    '   ### Install',
    '    #### Indented code, no heading',
    '#NoSpace'
  ].join('\n')
  t.same([...anchorsOf(markdown)], ['install', 'scaling-out', 'install-1'])
})
