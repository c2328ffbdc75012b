// The one spelling of an email the plugin goes by: the attempt counters count it, `verifyCredentials` and the embedded
// directory are handed it. Spellings a lookup could fold together (case, fullwidth `ａ`, a decomposed `é`) would
// otherwise each get attempts of their own, while the app's lookup finds the one user behind them all.

// Lowercasing after NFKC can make a pair NFKC composes (`T` + U+0308 to `t` + U+0308, then `ẗ`), and the spelling is
// normalised again where it is looked up: so passes run until one changes nothing (at most two change any of the
// pairs test/auth/emails.test.ts tries; the bound only stops a loop).
const maxPasses = 4

/** An email as the plugin keeps and counts it: trimmed, in Unicode NFKC, lowercased, and so again until it holds. */
export function normalizeEmail (email: string): string {
  let spelling = email
  for (let pass = 0; pass < maxPasses; pass++) {
    const next = spelling.normalize('NFKC').trim().toLowerCase()
    if (next === spelling) break
    spelling = next
  }
  return spelling
}
