// `npm test` runs the top-level test files only, one process each, and each imports every test file of the folder
// with its name in turn: a process's start (tap, coverage, the plugin's own import) costs more than most files' tests.
// One file alone still runs from its source: `npm run tap -- --disable-coverage test/<folder>/<file>.test.ts`.
import { readdirSync } from 'node:fs'

/** Imports, in name order, the test files of the folder named as the calling file (`test/auth.test.ts`: `test/auth/`). */
export async function runFolder (entry: string): Promise<void> {
  const extension = entry.slice(entry.lastIndexOf('.'))
  const folder = new URL(entry.slice(0, -`.test${extension}`.length) + '/')
  const files = readdirSync(folder).filter(name => name.endsWith(`.test${extension}`)).sort()
  for (const name of files) await import(new URL(name, folder).href)
}
