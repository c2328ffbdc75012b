// What the attempt limits and the password queue count a client by: its network.
import t from 'tap'
import { clientNetwork } from '../../lib/client-network.js'

t.test('an IPv4 address, mapped or not, is itself; an IPv6 address is its /64', async t => {
  t.equal(clientNetwork('192.0.2.1'), '192.0.2.1')
  t.equal(clientNetwork('::ffff:192.0.2.1'), '192.0.2.1')
  t.equal(clientNetwork('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  t.equal(clientNetwork('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
})

t.test('a forwarded address with its port (Azure Application Gateway writes one) is its address', async t => {
  t.equal(clientNetwork('192.0.2.1:5678'), '192.0.2.1')
  t.equal(clientNetwork('[2001:db8:1:2::1]:5678'), '2001:db8:1:2::/64')
  t.equal(clientNetwork('[2001:db8:1:2::1]'), '2001:db8:1:2::/64')
  t.equal(clientNetwork('[::ffff:192.0.2.1]:1'), '192.0.2.1')
})

t.test('a string that is no address is one client, unknown, not one client per spelling', async t => {
  for (const ip of ['not-an-address', 'unknown', '', '192.0.2.1:', '192.0.2.1:port', '[2001:db8::1]x', '[not-an-address]:1', '2001:db8::1]:1', '192.0.2.1:1:2']) {
    t.equal(clientNetwork(ip), 'unknown', JSON.stringify(ip))
  }
})

t.test('an IPv6 address that carries an IPv4 client (NAT64, Teredo) is that client, not the translator\'s /64', async t => {
  // Behind NAT64, every IPv4 client of the translator shares 64:ff9b::/64: counted by it, one would lock all out.
  t.equal(clientNetwork('64:ff9b::c000:201'), '192.0.2.1')
  t.equal(clientNetwork('64:ff9b::c633:6401'), '198.51.100.1')
  t.equal(clientNetwork('64:ff9b:1::c000:201'), '192.0.2.1')
  // Teredo keeps the client's public IPv4 inverted in the last 32 bits (RFC 4380's example: 192.0.2.45).
  t.equal(clientNetwork('2001:0:4136:e378:8000:63bf:3fff:fdd2'), '192.0.2.45')
})

t.test('an IPv4 address in another spelling than dotted decimal (leading zeros, fewer parts, hex) is no address', async t => {
  // ipaddr.js reads 010.0.0.1 as octal (8.0.0.1) and 127.1 as 127.0.0.1: another client than the proxy's log shows.
  for (const ip of ['010.0.0.1', '192.168.001.001', '0192.0.2.1', '192.0.2.01', '127.1', '10.1.1', '0x7f.0.0.1', '0xc0000201', '3221225985', '010.0.0.1:5678', '[::ffff:010.0.0.1]:1']) {
    t.equal(clientNetwork(ip), 'unknown', JSON.stringify(ip))
  }
  t.equal(clientNetwork('0.0.0.0'), '0.0.0.0', 'a single 0 is no leading zero')
  // Node's IPv6 zones take more characters than ipaddr.js reads: each address net.isIP takes is one ipaddr.js reads.
  t.equal(clientNetwork('fe80::1%eth0'), 'fe80::/64')
  t.equal(clientNetwork('fe80::1%eth-0.1'), 'fe80::/64')
  t.equal(clientNetwork('10.0.0.1'), '10.0.0.1')
})
