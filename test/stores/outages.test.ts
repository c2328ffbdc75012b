// The one rule for retried failures of Redis or a store (lib/stores/outages.ts): an outage's start is a warning, one
// that outlasts a failover (10 s) an error, once; its end is for the caller to tell. On a fake clock.
import t from 'tap'
import { Outages } from '../../lib/stores/outages.js'
import { fakeClock } from '../clock.js'

/** A logger keeping `level message {fields}` lines, and each line's fields. */
function lines () {
  const logged: string[] = []
  const fields: object[] = []
  const line = (level: string) => (logFields: object, message: string) => {
    logged.push(`${level} ${message} ${JSON.stringify(logFields)}`)
    fields.push(logFields)
  }
  return { logged, fields, log: { warn: line('warn'), error: line('error') } as never }
}

t.test('an outage is a warning when it begins, an error once at its first failure 10 s on, and its end is told', async t => {
  const clock = fakeClock(t, ['Date'])
  const { logged, fields, log } = lines()
  const outages = new Outages()
  t.notOk(outages.ended(), 'no outage yet: nothing to tell')
  const err = { message: 'connect ECONNREFUSED', stack: 'Error: connect ECONNREFUSED\n    at ioredis' }
  outages.failed(log, err, 'Redis unavailable')
  clock.tick(9_999)
  outages.failed(log, err, 'Redis unavailable')
  t.same(logged, ['warn Redis unavailable {"err":{"message":"connect ECONNREFUSED"}}'], 'a failover\'s length: a warning alone, without the stack')
  clock.tick(1)
  outages.failed(log, err, 'Redis unavailable')
  clock.tick(5_000)
  outages.failed(log, err, 'Redis unavailable')
  t.same(logged.slice(1).map(line => line.replace(/ \{.*/, '')), ['error Redis unavailable (failing for 10 s, longer than a failover)'], 'past it, one error')
  t.equal((fields[1] as { err: unknown }).err, err, 'with the whole error')
  t.ok(outages.ended(), 'its end is to be told')
  t.notOk(outages.ended(), 'once')
  outages.failed(log, err, 'Redis unavailable')
  t.equal(logged.length, 3, 'the next outage is a warning again')
  t.match(logged[2], /^warn /)
})

t.test('with a quiet time, an outage begun within it of the last one logged is counted, not logged, nor is its end', async t => {
  const clock = fakeClock(t, ['Date'])
  const { logged, log } = lines()
  const outages = new Outages(60_000)
  const err = { message: 'store away' }
  outages.failed(log, err, 'clock unread')
  t.ok(outages.ended())
  clock.tick(1_000)
  outages.failed(log, err, 'clock unread')
  t.notOk(outages.ended(), 'a second outage a second later: not logged, its end neither')
  outages.failed(log, err, 'clock unread')
  clock.tick(10_000)
  outages.failed(log, err, 'clock unread')
  t.ok(outages.ended(), 'one that outlasts a failover is an error all the same, and its end is told')
  clock.tick(60_000)
  outages.failed(log, err, 'clock unread')
  t.same(logged.map(line => line.replace(/ \{.*/, '')), ['warn clock unread', 'error clock unread (failing for 10 s, longer than a failover)', 'warn clock unread'])
  t.match(logged[2], /"unlogged":2/, 'the next warning counts the outages not logged')
})
