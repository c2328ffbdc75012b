// A full garbage collection on demand, so a test measures what the server keeps, not what it has yet to collect, and
// what its own work costs, not the collection of what earlier tests of the process left behind.
import v8 from 'node:v8'
import vm from 'node:vm'

v8.setFlagsFromString('--expose-gc')
/** A full collection, now. */
export const collect = vm.runInNewContext('gc') as () => void

/** Heap and buffers held after a full collection, in bytes. */
export function retainedBytes (): number {
  collect()
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}
