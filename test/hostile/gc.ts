// A full garbage collection on demand, so a test measures what the server keeps, not what it has yet to collect, and
// what its own work costs, not the collection of what earlier tests of the process left behind.
import v8 from 'node:v8'
import vm from 'node:vm'

v8.setFlagsFromString('--expose-gc')
/** A full collection, now. */
export const collect = vm.runInNewContext('gc') as () => void

/**
 * Memory held after a full collection. Collected twice: on Node 24 and later, memory the first collection lets go of
 * through weak callbacks (up to 3 MiB of external memory in a test) is freed by the second.
 */
function held (): NodeJS.MemoryUsage {
  collect()
  collect()
  return process.memoryUsage()
}

/** Heap and buffers held after a full collection, in bytes. */
export function retainedBytes (): number {
  const { heapUsed, external } = held()
  return heapUsed + external
}

/** Buffers (their ArrayBuffers) held after a full collection, in bytes: what kept reads cost, without the heap's noise. */
export const retainedBuffers = (): number => held().arrayBuffers

/**
 * How many objects of a class named `name` the heap holds after a full collection, counted in a heap snapshot: what a
 * library keeps out of reach (its records in private fields) counted exactly, where the heap's size is noise.
 */
export async function instancesOf (name: string): Promise<number> {
  collect()
  collect()
  const chunks: Buffer[] = []
  for await (const chunk of v8.getHeapSnapshot()) chunks.push(chunk as Buffer)
  const { snapshot: { meta }, nodes, strings } = JSON.parse(Buffer.concat(chunks).toString()) as HeapSnapshot
  const fields = meta.node_fields.length
  const typeAt = meta.node_fields.indexOf('type')
  const nameAt = meta.node_fields.indexOf('name')
  const object = meta.node_types[0].indexOf('object')
  let count = 0
  for (let i = 0; i < nodes.length; i += fields) {
    if (nodes[i + typeAt] === object && strings[nodes[i + nameAt]] === name) count++
  }
  return count
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[]] } }
  nodes: number[]
  strings: string[]
}
