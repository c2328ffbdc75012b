// Loopback source addresses for the bench's clients, which bind one before each connect. A bound connect takes a port
// that address holds nowhere else, searched at bind time past the address's TIME_WAIT sockets: with thousands of them
// on each of a few addresses (a scenario's closed sockets, for a minute), a connect took 1 to 2 s, and a storm 5 to 30
// times its usual time (docs/performance.md). All of 127.0.0.0/8 is loopback: 65,536 addresses keep a few on each.
const addresses = 65_536

/** The `n`th source address, 127.1.0.0 to 127.1.255.255, round and round. */
export function sourceAddress (n: number): string {
  const i = n % addresses
  return `127.1.${i >> 8}.${i & 255}`
}
