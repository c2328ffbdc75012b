// USERS_FILE: the reference server's further users. Node prints a JSON.parse error with the offending source line,
// and V8's message quotes the text around it: a typo would put the file's passwords in the container's logs.
import { readFile } from 'node:fs/promises'
import { InvalidConfigError, type DirectoryUser } from '../lib/index.js'
import { checkUsers } from '../lib/auth/user-directory.js'

/** The users listed in the file at `path`; a boot error names USERS_FILE and where the file (or which entry) went wrong, never its text. */
export async function readUsersFile (path: string): Promise<DirectoryUser[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new InvalidConfigError(`USERS_FILE ${path} cannot be read (${(error as NodeJS.ErrnoException).code})`)
  }
  let users: unknown
  try {
    users = JSON.parse(text)
  } catch {
    throw new InvalidConfigError(`USERS_FILE ${path} is not JSON (${lineAndColumn(text, firstWrongCharacter(text))})`)
  }
  if (!Array.isArray(users)) throw new InvalidConfigError(`USERS_FILE ${path} must hold a JSON array of users: [{ "email", "password" }]`)
  // As the plugin's `users` option is checked: each entry named by its index (USERS_FILE[2]), never its password.
  checkUsers(users as DirectoryUser[], 'USERS_FILE')
  return users as DirectoryUser[]
}

/**
 * Where JSON that fails to parse goes wrong: the end of its longest beginning that is JSON cut short (V8 says so at its
 * end). Found by parsing beginnings, as V8 gives no position for an unexpected token (its message quotes the text).
 */
function firstWrongCharacter (text: string): number {
  const cutShort = (length: number) => {
    try {
      JSON.parse(text.slice(0, length))
      return true
    } catch (error) {
      const { message } = error as Error
      return message.includes('end of JSON input') || Number(/at position (\d+)/.exec(message)?.[1] ?? -1) >= length
    }
  }
  // Every beginning up to `good` is JSON cut short; the one of length `bad` is not (the whole text may be, truncated).
  let [good, bad] = [0, text.length + 1]
  while (bad - good > 1) {
    const middle = (good + bad) >> 1
    if (cutShort(middle)) good = middle
    else bad = middle
  }
  return bad - 1
}

function lineAndColumn (text: string, position: number): string {
  const before = text.slice(0, position).split('\n')
  return `line ${before.length}, column ${before.at(-1)!.length + 1}`
}
