// Password checks take turns. Each keeps a core busy for tens of milliseconds (argon2), so they run one per spare
// core of the process, whichever of the plugin's registrations in it they are for (two tenants' storms would otherwise
// take two cores each), and the waiting ones queue per client address and are served an address at a time: a storm of wrong
// passwords from many addresses delays a legitimate login by one round, not by the whole storm. The queue is bounded
// in all and per address; past either, a check is refused at once (PROTOCOL.md section 11); one whose client left
// before its turn never runs. An address here is a client's network (lib/client-network.ts): an IPv6 client has a
// /64's worth of addresses, and one share for them.
import { availableParallelism } from 'node:os'
import { clientNetwork } from '../client-network.js'

export interface PasswordQueueLimits {
  /** Checks waiting for a turn, from every address. */
  limit: number
  /** Checks waiting for a turn from one client address (the application's own calls, without one, are not capped). */
  perAddress: number
}

/** A check that never ran: the caller answers SERVICE_UNAVAILABLE with its message, and gives its attempt back. */
export class PasswordUnchecked extends Error {
  constructor (name: string, message: string) {
    super(message)
    this.name = name
  }
}

export const queueFullReason = 'too many password checks waiting'

/** The queue is full. */
export class PasswordQueueFull extends PasswordUnchecked {
  constructor () {
    super('PasswordQueueFull', queueFullReason)
  }
}

/** The check's client left before its turn came: nobody would hear the answer. */
export class PasswordClientLeft extends PasswordUnchecked {
  constructor () {
    super('PasswordClientLeft', 'the client left before its password was checked')
  }
}

type Waiting = () => void

/**
 * The lanes of one process: one per core but the one the event loop keeps, shared by every registration's queue.
 * A lane that frees goes to the queues with checks waiting in turn, a check each.
 */
export class PasswordLanes {
  readonly #count: number
  #running = 0
  /** The queues with checks waiting, in the order they take their turns (a Set keeps insertion order). */
  readonly #waiting = new Set<PasswordChecks>()

  constructor (count = Math.max(1, availableParallelism() - 1)) {
    this.#count = count
  }

  get free (): boolean {
    return this.#running < this.#count
  }

  async run<T> (check: () => Promise<T>): Promise<T> {
    this.#running++
    try {
      return await check()
    } finally {
      this.#running--
      this.#next()
    }
  }

  /** `queue` has a check waiting: it gets a lane in its turn. */
  wait (queue: PasswordChecks): void {
    this.#waiting.add(queue)
  }

  #next (): void {
    // A turn whose client left takes no lane: the next one takes it.
    while (this.free) {
      const next = this.#waiting.values().next()
      if (next.done) return
      const queue = next.value
      this.#waiting.delete(queue)
      // To the back of the line, with the rest of its checks.
      if (queue.startNext()) this.#waiting.add(queue)
    }
  }
}

/** The process's lanes, for every registration of the plugin in it. */
const processLanes = new PasswordLanes()

export class PasswordChecks {
  readonly #limits: PasswordQueueLimits
  readonly #lanes: PasswordLanes
  #waiting = 0
  /** Logins admitted whose attempts are being counted, in all and by address. */
  #counting = 0
  readonly #countingBy = new Map<string | null, number>()
  /** Waiting checks by address, in the order the addresses take their turns (a Map keeps insertion order). */
  readonly #queues = new Map<string | null, Waiting[]>()

  constructor (limits: PasswordQueueLimits, lanes = processLanes) {
    this.#limits = limits
    this.#lanes = lanes
  }

  /**
   * Runs `check` in its turn; rejects with PasswordQueueFull without running it when the queue is full, and with
   * PasswordClientLeft when its turn comes and its client no longer `waiting`. `ip`: the client's address; its network
   * takes the turns and has the share (an IPv6 address, its /64: see `clientNetwork`).
   */
  run<T> (ip: string | null, check: () => Promise<T>, waiting?: () => boolean): Promise<T> {
    if (this.#lanes.free) return this.#turn(check, waiting)
    const address = ip === null ? null : clientNetwork(ip)
    if (!this.#hasRoom(address, this.#waiting)) return Promise.reject(new PasswordQueueFull())
    const queue = this.#queues.get(address)
    return new Promise<T>((resolve, reject) => {
      const turn = () => { this.#turn(check, waiting).then(resolve, reject) }
      if (queue) queue.push(turn)
      else this.#queues.set(address, [turn])
      this.#waiting++
      this.#lanes.wait(this)
    })
  }

  /**
   * Whether a check from `ip` may go on to count its attempt, before it waits: a login asks first, so that a flood the
   * queue would refuse leaves no counter behind (one an address, and an IPv6 network has a /64 by the thousand), in
   * memory or on Redis. An admitted login holds room in the queue while its attempt is counted, until `counted`.
   */
  admit (ip: string | null): boolean {
    const address = ip === null ? null : clientNetwork(ip)
    const counting = this.#countingBy.get(address) ?? 0
    // Those being counted take the address's share too: one address's flood would otherwise hold the whole queue's
    // room for a store's round trip after another, every other address's login refused meanwhile.
    if (!this.#lanes.free && !this.#hasRoom(address, this.#waiting + this.#counting, counting)) return false
    this.#counting++
    this.#countingBy.set(address, counting + 1)
    return true
  }

  /** An admitted login's attempt from `ip` was counted (or could not be): it runs or waits now, or goes. */
  counted (ip: string | null): void {
    const address = ip === null ? null : clientNetwork(ip)
    const counting = this.#countingBy.get(address)! - 1
    if (counting === 0) this.#countingBy.delete(address)
    else this.#countingBy.set(address, counting)
    this.#counting--
  }

  #hasRoom (address: string | null, taken: number, takenByAddress = 0): boolean {
    return taken < this.#limits.limit &&
      (address === null || (this.#queues.get(address)?.length ?? 0) + takenByAddress < this.#limits.perAddress)
  }

  /**
   * Starts the next waiting check, of the address whose turn it is (which goes to the back of the line, with the rest
   * of its checks); tells whether more are waiting.
   */
  startNext (): boolean {
    const [address, queue] = this.#queues.entries().next().value!
    this.#queues.delete(address)
    const turn = queue.shift()!
    if (queue.length > 0) this.#queues.set(address, queue)
    this.#waiting--
    turn()
    return this.#waiting > 0
  }

  /**
   * A check's turn: its lane goes to the next one if its client left meanwhile (a flood of sockets that send a password
   * and close would otherwise keep every lane hashing for nobody, long after they are gone).
   */
  #turn<T> (check: () => Promise<T>, waiting: (() => boolean) | undefined): Promise<T> {
    if (waiting?.() === false) return Promise.reject(new PasswordClientLeft())
    return this.#lanes.run(check)
  }
}
