// HMAC-SHA256 (RFC 2104) over Node's one-shot `crypto.hash`, for the access-token check every handshake makes.
// `createHmac` makes a native object per call (collected through a weak callback), sets up an OpenSSL HMAC context
// and returns a fresh Buffer; `crypto.hash` keeps its digest fetched and can answer in a string. With the key's two
// padded blocks prepared once and reused as scratch space, a MAC is two digests and no native object at all.
import { hash } from 'node:crypto'

const blockSize = 64 // SHA-256's
const digestSize = 32

export class HmacSha256 {
  // (key ⊕ ipad) ‖ message: the message is written after the block on every call.
  #inner: Buffer
  // (key ⊕ opad) ‖ inner digest.
  readonly #outer = Buffer.alloc(blockSize + digestSize)

  constructor (key: Buffer) {
    // Keys longer than a block are hashed first; shorter ones are padded with zeros.
    const block = Buffer.alloc(blockSize)
    ;(key.length > blockSize ? hash('sha256', key, 'buffer') : key).copy(block)
    this.#inner = Buffer.alloc(blockSize + 512)
    for (let i = 0; i < blockSize; i++) {
      this.#inner[i] = block[i] ^ 0x36
      this.#outer[i] = block[i] ^ 0x5c
    }
  }

  /** The MAC of `message` (an ASCII string: a JWT's signing input is base64url and dots), in base64url. */
  digest (message: string): string {
    const length = blockSize + message.length
    if (length > this.#inner.length) {
      const grown = Buffer.alloc(length * 2)
      this.#inner.copy(grown, 0, 0, blockSize)
      this.#inner = grown
    }
    this.#inner.write(message, blockSize, 'latin1')
    // The inner digest goes through a latin1 string ('binary', one char per byte) straight into the outer block.
    this.#outer.write(hash('sha256', this.#inner.subarray(0, length), 'binary'), blockSize, 'latin1')
    return hash('sha256', this.#outer, 'base64url')
  }
}
