// Debian's Chromium driven by playwright-core, launched once per test file. The browser tests never skip: without
// Chromium they fail, and say what is missing.
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Test } from 'tap'

const executablePath = '/usr/bin/chromium'

/** Chromium, closed when `t` (the file's root test) ends; `args`: more command-line switches. */
export async function launchChromium (t: Test, args: string[] = []): Promise<Browser> {
  if (!existsSync(executablePath)) {
    throw new Error(`the browser tests need Debian's Chromium at ${executablePath} (apt-get install chromium)`)
  }
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', ...args] })
  t.teardown(() => browser.close())
  return browser
}

/**
 * A page in a context of its own (its own cookies), closed at the end of the test. Its waits have no time limit: they
 * wait for events, and the test's timeout is the only bound. An uncaught error in the page fails the test.
 */
export async function openPage (t: Test, browser: Browser): Promise<Page> {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(0)
  page.on('pageerror', (error) => t.fail(`uncaught in the page: ${error.message}`))
  return page
}
