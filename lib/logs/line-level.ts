// A line's level read from its first member, without parsing it: for a line dropped before it reaches the stream (too
// long, or held from Redis), whose missing the subscribers of its level are told of.

/** pino writes the level first: `{"level":30,` or, with `formatters.level`, `{"level":"info",`. */
const leading = /^\{"level":(?:(\d+)|"([^"\\]{1,64})")/

/** The level, by the logger's `levelValues` for a name; one that cannot be read counts as the most severe, as in the stream. */
export function leadingLevel (line: string, levelValues: Record<string, number>): number {
  const match = leading.exec(line)
  if (match === null) return Infinity
  if (match[1] !== undefined) return Number(match[1])
  return Object.hasOwn(levelValues, match[2]) ? levelValues[match[2]] : Infinity
}
