// How log lines reach the subscribers: straight to this process's, or through Redis to every process's.
/** Called for every line of every process on the feed, with the process that logged it. */
export type LineHandler = (line: string, node: string) => void

export interface LogFeed {
  /** Whether other processes read what is published: then every line goes out, whoever listens here. */
  readonly shared: boolean
  publish (line: string): void
  start (onLine: LineHandler): void
}
