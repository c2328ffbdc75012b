// A real three-master Redis Cluster on loopback ports, made as an operator makes one: three redis-server in cluster
// mode, joined by `redis-cli --cluster create` (both from the `redis-server` Debian package).
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import type { Test } from 'tap'
import { freePorts, RedisServer } from './redis-server.js'

export class RedisCluster {
  /** Its three masters, in the order of their slot ranges. */
  readonly nodes: RedisServer[]

  private constructor (nodes: RedisServer[]) {
    this.nodes = nodes
  }

  /** Starts one for this test; it is stopped, and its nodes' config files removed, at the test's end. */
  static async start (t: Test): Promise<RedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'realtime-cluster-'))
    // Each node's cluster bus gets a port of its own: the default, the client port + 10000, may not exist.
    const ports = await freePorts(6)
    const nodes = [0, 1, 2].map(i => new RedisServer(ports[i]!, [
      '--cluster-enabled', 'yes', '--cluster-port', String(ports[i + 3]),
      '--cluster-config-file', `nodes-${ports[i]}.conf`, '--dir', dir
    ]))
    const cluster = new RedisCluster(nodes)
    t.teardown(async () => {
      await Promise.all(nodes.map(node => node.stop()))
      await rm(dir, { recursive: true, force: true })
    })
    await Promise.all(nodes.map(node => node.start()))
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes.map(node => `127.0.0.1:${node.port}`),
      '--cluster-replicas', '0', '--cluster-yes'])
    // redis-cli returns once the nodes agree on the slots; each says `ok` once it has heard that they all do.
    for (const node of nodes) {
      const redis = new Redis(node.port, '127.0.0.1')
      while (!(await redis.cluster('INFO')).includes('cluster_state:ok')) await new Promise(resolve => setTimeout(resolve, 20))
      redis.disconnect()
    }
    return cluster
  }

  /** An ioredis Cluster client, as an app makes one, disconnected at the test's end. */
  client (t: Test, options: ClusterOptions = {}): Cluster {
    const client = new Cluster([{ host: '127.0.0.1', port: this.nodes[0]!.port }], options)
    t.teardown(() => client.disconnect())
    return client
  }

  /** Runs `command` on every running node, each with a connection of its own. */
  async onEachNode<T> (command: (node: Redis) => Promise<T>): Promise<T[]> {
    return Promise.all(this.nodes.filter(node => node.running).map(async ({ port }) => {
      const node = new Redis(port, '127.0.0.1')
      try {
        return await command(node)
      } finally {
        node.disconnect()
      }
    }))
  }

  /** The node whose slots hold `key`. */
  async nodeOf (key: string): Promise<RedisServer> {
    const [[slot, ranges]] = await this.onEachNode(node => Promise.all([node.cluster('KEYSLOT', key), node.cluster('SLOTS')]))
    const [, , [, port]] = ranges.find(([from, to]) => slot >= from && slot <= to)!
    return this.nodes.find(node => node.port === port)!
  }

  /** Every key matching `pattern`, whichever node holds it. */
  async keys (pattern: string): Promise<string[]> {
    return (await this.onEachNode(node => node.keys(pattern))).flat().sort()
  }

  /** How many connections listen on `channel`, over every node (a subscriber connects to one). */
  async subscribers (channel: string): Promise<number> {
    const counts = await this.onEachNode(async node => Number((await node.pubsub('NUMSUB', channel))[1]))
    return counts.reduce((sum, count) => sum + count, 0)
  }
}
