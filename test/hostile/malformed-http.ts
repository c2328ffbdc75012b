// Malformed HTTP requests over a raw TCP socket (what a hostile client sends and `fetch` cannot), and a reading of
// log text that decodes the raw bytes a line may carry: a secret hidden in a byte array is still a leak.
import net from 'node:net'

export interface Credentials {
  accessToken: string
  refreshToken: string
  password: string
}

/** Requests Node's HTTP parser refuses, each with the credentials in the URL, the headers and the body. */
export function malformedRequests ({ accessToken, refreshToken, password }: Credentials): string[] {
  const body = JSON.stringify({ email: 'admin@example.com', password })
  const rest = `Host: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  return [
    // An invalid request line ("Expected CRLF after version").
    `POST /auth/login?access_token=${accessToken} HTTP/1.1 junk\r\n${rest}`,
    // An invalid header name, after the credential headers. Not a space (`Bad Header`): Node 20 before 20.19.2 takes
    // that one as a name, and the package supports 20.12 on (`npm run test:lowest`).
    `POST /auth/login?access_token=${accessToken} HTTP/1.1\r\nAuthorization: Bearer ${accessToken}\r\n` +
      `Cookie: directus_refresh_token=${refreshToken}\r\nBad@Header: x\r\n${rest}`,
    // Headers over Node's 16 KiB limit (Fastify's "client header_overflow").
    `GET /websocket?access_token=${accessToken} HTTP/1.1\r\nAuthorization: Bearer ${accessToken}\r\n` +
      `X-Padding: ${'a'.repeat(20_000)}\r\n${rest}`
  ]
}

/** Sends raw bytes; resolves with the answer once the server has hung up (it answers 400 or 431 and closes). */
export function sendRaw (port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = net.connect(port, '127.0.0.1', () => socket.end(request))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', () => {}) // a reset after the answer is the server hanging up
    socket.on('close', () => resolve(Buffer.concat(chunks).toString()))
  })
}

/** Log text, plus the text of every byte array in it (`{"type":"Buffer","data":[...]}`), where raw bytes hide. */
export function readable (text: string): string {
  const decoded = [...text.matchAll(/"data":\[([\d,]*)\]/g)]
    .map(([, bytes]) => Buffer.from(bytes.split(',').map(Number)).toString('latin1'))
  return [text, ...decoded].join('\n')
}
