// A real three-master Redis Cluster on loopback ports, made as an operator makes one: three redis-server in cluster
// mode, joined by `redis-cli --cluster create` (both from the `redis-server` Debian package). Or one master alone;
// replicas added as an operator adds them; each node's cluster bus behind a proxy that can cut it off.
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import type { Test } from 'tap'
import { freePorts, RedisServer } from './redis-server.js'

/** A TCP proxy to a node's cluster bus that can stop passing anything, as a firewall rule or a one-way partition. */
interface BusProxy {
  cut (): void
}

/** A proxy on `port` to the bus on `target`, closed with its connections at the test's end. */
async function busProxy (t: Test, port: number, target: number): Promise<BusProxy> {
  let cut = false
  const sockets = new Set<net.Socket>()
  const server = net.createServer(client => {
    if (cut) {
      client.destroy()
      return
    }
    const upstream = net.connect(target, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        sockets.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  return {
    cut () {
      cut = true
      for (const socket of sockets) socket.destroy()
    }
  }
}

export interface StartOptions {
  /** Three (the default), or one holding every slot (a cluster too small for `redis-cli --cluster create`). */
  masters?: 1 | 3
  /**
   * Each node announces a proxy to its cluster bus as its bus (`cutBus`), and the nodes wait a minute before they count
   * one that does not answer as failed: a node cut off stays in the cluster, hearing nothing of the others.
   */
  cuttableBus?: boolean
  /**
   * One replica for each of the three masters, as managed cluster-mode Redis runs them, and `cluster-node-timeout`
   * 1000 ms on every node: a master that dies or hangs is failed over within a few seconds (`failedOver`).
   */
  replicated?: boolean
}

/** A node's line in CLUSTER NODES: its id, address, flags, master, ... link state and slots. */
const lineOf = (nodes: string, id: string) => nodes.split('\n').find(line => line.startsWith(`${id} `))?.split(' ') ?? []

export class RedisCluster {
  /** Its masters, in the order of their slot ranges. */
  readonly nodes: RedisServer[]
  /** Each master's replica (`replicated`), in the order of `nodes`. */
  readonly replicas: RedisServer[] = []
  /** Each node's id, kept: a node killed or frozen answers no CLUSTER MYID. */
  readonly #ids = new Map<RedisServer, string>()
  readonly #busProxies: BusProxy[]
  /** Where the nodes keep their config files. */
  readonly #dir: string

  private constructor (nodes: RedisServer[], busProxies: BusProxy[], dir: string) {
    this.nodes = nodes
    this.#busProxies = busProxies
    this.#dir = dir
  }

  /** Starts one for this test; it is stopped, and its nodes' config files removed, at the test's end. */
  static async start (t: Test, { masters = 3, cuttableBus = false, replicated = false }: StartOptions = {}): Promise<RedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'realtime-cluster-'))
    // Each node's cluster bus gets a port of its own: the default, the client port + 10000, may not exist.
    const count = replicated ? 2 * masters : masters
    const ports = await freePorts(3 * count)
    const [clients, buses, proxies] = [0, 1, 2].map(i => ports.slice(i * count, (i + 1) * count)) as [number[], number[], number[]]
    const busProxies: BusProxy[] = []
    // Each node's own dump file in the shared folder: a replica's full sync writes one, which another node restarted
    // there would otherwise load as its own (RedisServer gives a lone server a folder of its own for the same reason).
    const nodes = clients.map((port, i) => new RedisServer(port, [
      '--cluster-enabled', 'yes', '--cluster-port', String(buses[i]),
      '--cluster-config-file', `nodes-${port}.conf`, '--dbfilename', `dump-${port}.rdb`, '--dir', dir,
      ...cuttableBus ? ['--cluster-announce-bus-port', String(proxies[i]), '--cluster-node-timeout', '60000'] : [],
      // A node learns its address from the others: alone, it would name itself with none (CLUSTER SLOTS).
      ...masters === 1 ? ['--cluster-announce-ip', '127.0.0.1'] : [],
      // A replica is sent the master's writes at once, and pinged (its offset known to clients) every second.
      ...replicated ? ['--cluster-node-timeout', '1000', '--repl-diskless-sync-delay', '0', '--repl-ping-replica-period', '1'] : []
    ]))
    if (cuttableBus) for (const [i, port] of proxies.entries()) busProxies.push(await busProxy(t, port, buses[i]!))
    const cluster = new RedisCluster(nodes.slice(0, masters), busProxies, dir)
    t.teardown(async () => {
      await Promise.all(nodes.map(node => node.stop()))
      await rm(dir, { recursive: true, force: true })
    })
    await Promise.all(nodes.map(node => node.start()))
    if (masters === 1) {
      await cluster.on(nodes[0]!, redis => redis.cluster('ADDSLOTSRANGE', 0, 16383))
    } else {
      await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes.map(node => `127.0.0.1:${node.port}`),
        '--cluster-replicas', replicated ? '1' : '0', '--cluster-yes'])
    }
    // redis-cli returns once the nodes agree on the slots; each says `ok` once it has heard that they all do.
    for (const node of nodes) {
      const redis = new Redis(node.port, '127.0.0.1')
      while (!(await redis.cluster('INFO')).includes('cluster_state:ok')) await new Promise(resolve => setTimeout(resolve, 20))
      redis.disconnect()
    }
    // redis-cli makes the first nodes masters and pairs the others with them as it likes (all on one host): each
    // master's replica, found by its role, once it has synced.
    if (replicated) for (const master of cluster.nodes) cluster.replicas.push(await cluster.replicaOf(master, nodes.slice(masters)))
    for (const node of nodes) cluster.#ids.set(node, await cluster.idOf(node))
    return cluster
  }

  /** The node of `candidates` that replicates `master`, once its link is up and `master` lists it online (ROLE). */
  async replicaOf (master: RedisServer, candidates: RedisServer[]): Promise<RedisServer> {
    for (;;) {
      const [, , online] = await this.on(master, redis => redis.role()) as [string, number, Array<[string, string, string]>]
      const replica = candidates.find(node => online.some(([, port]) => Number(port) === node.port))
      if (replica && (await this.on(replica, redis => redis.info('replication'))).includes('master_link_status:up')) return replica
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  /**
   * Resolves once the cluster has failed `master` (killed or frozen) over, as its own nodes tell: every other node has
   * it flagged `fail`, lists its replica as a master, and says the cluster is `ok`.
   */
  async failedOver (master: RedisServer): Promise<RedisServer> {
    const replica = this.replicas[this.nodes.indexOf(master)]!
    const [masterId, replicaId] = [this.#ids.get(master)!, this.#ids.get(replica)!]
    const others = [...this.nodes, ...this.replicas].filter(node => node !== master)
    const done = async () => (await Promise.all(others.map(node => this.on(node, async redis => {
      const [nodes, info] = [await redis.cluster('NODES') as string, await redis.cluster('INFO')]
      return lineOf(nodes, masterId)[2]!.includes('fail') && !lineOf(nodes, masterId)[2]!.includes('fail?') &&
        lineOf(nodes, replicaId)[2]!.includes('master') && info.includes('cluster_state:ok')
    })))).every(Boolean)
    while (!(await done())) await new Promise(resolve => setTimeout(resolve, 50))
    return replica
  }

  /**
   * Resolves once `node` (a failed-over master, restarted or thawed) has rejoined as a replica of `master`: it says
   * so, its link up, and every other node lists it as `master`'s replica.
   */
  async rejoinedAsReplica (node: RedisServer, master: RedisServer): Promise<void> {
    const [nodeId, masterId] = [this.#ids.get(node)!, this.#ids.get(master)!]
    const done = async () => (await this.on(node, redis => redis.info('replication'))).includes('master_link_status:up') &&
      (await Promise.all([...this.nodes, ...this.replicas].filter(other => other.running).map(other => this.on(other, async redis => {
        const line = lineOf(await redis.cluster('NODES') as string, nodeId)
        return line[2]!.includes('slave') && line[3] === masterId
      })))).every(Boolean)
    while (!(await done())) await new Promise(resolve => setTimeout(resolve, 50))
  }

  /**
   * `node` (started with `cuttableBus`) hears nothing more from the others on the cluster bus, PUBLISH relays included,
   * as behind a firewall rule or a one-way partition; clients still reach it.
   */
  cutBus (node: RedisServer): void {
    this.#busProxies[this.nodes.indexOf(node)]!.cut()
  }

  /**
   * Starts a replica of `master` and joins it as an operator does (`redis-cli --cluster add-node --cluster-slave`);
   * it is stopped at the test's end. Resolves once every master lists it (CLUSTER SLOTS), as clients then find it.
   */
  async addReplica (t: Test, master: RedisServer): Promise<RedisServer> {
    const [port, bus] = await freePorts(2)
    const replica = new RedisServer(port!, ['--cluster-enabled', 'yes', '--cluster-port', String(bus),
      '--cluster-config-file', `nodes-${port}.conf`, '--dbfilename', `dump-${port}.rdb`, '--dir', this.#dir])
    t.teardown(() => replica.stop())
    await replica.start()
    // Clients find a replica once its master's replication stream has reached it (its offset is past 0): at once, and
    // on the master's next PING to its replicas, every second rather than ten.
    await this.on(master, redis => redis.config('SET', 'repl-diskless-sync-delay', '0', 'repl-ping-replica-period', '1'))
    await promisify(execFile)('redis-cli', ['--cluster', 'add-node', `127.0.0.1:${port}`, `127.0.0.1:${master.port}`,
      '--cluster-slave', '--cluster-master-id', await this.idOf(master)])
    const listed = async () => (await this.onEachNode(node => node.cluster('SLOTS') as Promise<unknown[][]>))
      .every(ranges => ranges.some(range => range.slice(2).some(node => (node as [string, number])[1] === port)))
    while (!(await listed())) await new Promise(resolve => setTimeout(resolve, 20))
    return replica
  }

  /**
   * Starts a master holding no slot and joins it as an operator does before a reshard moves slots to it
   * (`redis-cli --cluster add-node`); it is stopped at the test's end. Resolves once every node knows it, and it knows the slots.
   */
  async addMaster (t: Test): Promise<RedisServer> {
    const [port, bus] = await freePorts(2)
    const master = new RedisServer(port!, ['--cluster-enabled', 'yes', '--cluster-port', String(bus),
      '--cluster-config-file', `nodes-${port}.conf`, '--dbfilename', `dump-${port}.rdb`, '--dir', this.#dir])
    t.teardown(() => master.stop())
    await master.start()
    await promisify(execFile)('redis-cli', ['--cluster', 'add-node', `127.0.0.1:${port}`, `127.0.0.1:${this.nodes[0]!.port}`])
    const id = await this.idOf(master)
    const known = async () => (await this.onEachNode(node => node.cluster('NODES') as Promise<string>)).every(nodes => nodes.includes(id))
    while (!(await known())) await new Promise(resolve => setTimeout(resolve, 20))
    // And once it has heard the slots from them: until then it says the cluster is down, and a MIGRATE to it fails
    // (CLUSTERDOWN), as seen on a loaded machine.
    await this.on(master, async redis => {
      while (!(await redis.cluster('INFO')).includes('cluster_state:ok')) await new Promise(resolve => setTimeout(resolve, 20))
    })
    return master
  }

  /** Runs `command` on `node`, with a connection of its own. */
  async on<T> (node: RedisServer, command: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis(node.port, '127.0.0.1')
    try {
      return await command(redis)
    } finally {
      redis.disconnect()
    }
  }

  /** The node's id in the cluster (CLUSTER MYID). */
  idOf (node: RedisServer): Promise<string> {
    return this.on(node, redis => redis.cluster('MYID') as Promise<string>)
  }

  /** An ioredis Cluster client, as an app makes one, disconnected at the test's end. */
  client (t: Test, options: ClusterOptions = {}): Cluster {
    const client = new Cluster([{ host: '127.0.0.1', port: this.nodes[0]!.port }], options)
    t.teardown(() => client.disconnect())
    return client
  }

  /** Runs `command` on every running node, each with a connection of its own. */
  async onEachNode<T> (command: (node: Redis) => Promise<T>): Promise<T[]> {
    return Promise.all([...this.nodes, ...this.replicas].filter(node => node.running).map(async ({ port }) => {
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
    return [...this.nodes, ...this.replicas].find(node => node.port === port)!
  }

  /** Every key matching `pattern`, whichever node holds it. */
  async keys (pattern: string): Promise<string[]> {
    // A replica holds its master's keys too.
    return [...new Set((await this.onEachNode(node => node.keys(pattern))).flat())].sort()
  }

  /** How many connections listen on `channel`, over every node (a subscriber connects to one). */
  async subscribers (channel: string): Promise<number> {
    const counts = await this.onEachNode(async node => Number((await node.pubsub('NUMSUB', channel))[1]))
    return counts.reduce((sum, count) => sum + count, 0)
  }
}
