// HMAC-SHA256 (RFC 2104) over Node's one-shot `crypto.hash`, for the access-token check every handshake makes.
// `createHmac` makes a native object per call (collected through a weak callback), sets up an OpenSSL HMAC context
// and returns a fresh Buffer; `crypto.hash` keeps its digest fetched and can answer in a string. With the key's two
// padded blocks prepared once and reused as scratch space, a MAC is two digests and no native object at all.
import { hash } from 'node:crypto'

const blockSize = 64 // SHA-256's
const digestSize = 32

export class HmacSha256 {
  // (key ⊕ ipad) ‖ message: the message is written after the block on every call.
  readonly #inner = Buffer.alloc(blockSize + 1024)
  // (key ⊕ opad) ‖ inner digest.
  readonly #outer = Buffer.alloc(blockSize + digestSize)

  constructor (key: Buffer) {
    // Keys longer than a block are hashed first; shorter ones are padded with zeros.
    const block = Buffer.alloc(blockSize)
    ;(key.length > blockSize ? hash('sha256', key, 'buffer') : key).copy(block)
    for (let i = 0; i < blockSize; i++) {
      this.#inner[i] = block[i] ^ 0x36
      this.#outer[i] = block[i] ^ 0x5c
    }
  }

  /** The MAC of `message` (an ASCII string: a JWT's signing input is base64url and dots), in base64url. */
  digest (message: string): string {
    const length = blockSize + message.length
    // A message longer than the scratch space (a token with large claims) gets a buffer of its own for the call,
    // rather than a larger scratch space for good.
    const inner = length <= this.#inner.length ? this.#inner : Buffer.alloc(length)
    if (inner !== this.#inner) this.#inner.copy(inner, 0, 0, blockSize)
    inner.write(message, blockSize, 'latin1')
    // The inner digest goes through a latin1 string ('binary', one char per byte) straight into the outer block.
    this.#outer.write(hash('sha256', inner.subarray(0, length), 'binary'), blockSize, 'latin1')
    return hash('sha256', this.#outer, 'base64url')
  }
}
