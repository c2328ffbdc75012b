// The one spelling of an email the plugin goes by: the attempt counters count it, `verifyCredentials` and the embedded
// directory are handed it. Spellings a lookup could fold together (case, fullwidth `ａ`, a decomposed `é`) would
// otherwise each get attempts of their own, while the app's lookup finds the one user behind them all.

/** An email as the plugin keeps and counts it: trimmed, in Unicode NFKC, lowercased. */
export function normalizeEmail (email: string): string {
  return email.normalize('NFKC').trim().toLowerCase()
}
