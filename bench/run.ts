// `npm run bench`: every scenario of issue 6 against its baselines, in one run, on this machine. Servers run in child
// processes, the load in worker threads of this one. Prints the table; writes bench/results/results.json and
// chart.svg (a partial or quick run writes *.tmp files instead, which git ignores).
//   node dist/bench/run.js [scenario numbers...]   e.g. `node dist/bench/run.js 1 6`
//   BENCH_QUICK=1            fewer rounds and sockets, to try things out
//   BENCH_ROUNDS=<n>         alternating rounds per throughput goal (default 16): more for steadier medians
//   BENCH_CPU_PROF=<dir>     a V8 CPU profile of every server process
//   BENCH_NODE_FLAGS=<flags> Node/V8 flags for every server process, e.g. "--no-opt --no-maglev"
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { openFileLimits, ServerHandle, signedAfterStart, startupMemory } from './harness.js'
import { markdownTable, svgChart, textTable, type Machine } from './report.js'
import { scaleFactor, scaleScenarios } from './scale.js'
import {
  credentialStorm, expiryPrecision, graphqlHandshake, handshakeTokens, jsonHandshake, memoryPerSocket, pingPong,
  TokenPool, type Budget, type ScenarioResult
} from './scenarios.js'

const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url))
// docs/performance.md shows the charts of the last full runs: the package ships docs/, not bench/results/.
const docsDir = fileURLToPath(new URL('../../docs/', import.meta.url))

/**
 * This process holds every client socket, each server process its own: both need `sockets` descriptors and some.
 * Node cannot raise its own limit, so a soft limit below what is needed re-runs the script under `ulimit -n`.
 */
function ensureDescriptors (sockets: number): number {
  const needed = sockets + 1024
  const { soft, hard } = openFileLimits()
  if (soft >= needed) return sockets
  if (hard >= needed && !process.env.BENCH_ULIMIT_RAISED) {
    const limit = Number.isFinite(hard) ? hard : needed
    const rerun = spawnSync('sh', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_ULIMIT_RAISED: '1' }
    })
    process.exit(rerun.status ?? 1)
  }
  const fitting = Math.max(1000, Math.floor((Math.min(soft, hard) - 1024) / 1000) * 1000)
  console.error(`open-file limit ${soft} (hard ${hard}): ${fitting} sockets instead of ${sockets}`)
  return fitting
}

function machine (loadAtStart: number): Machine {
  const cpus = os.cpus()
  return {
    load: [loadAtStart, os.loadavg()[0]],
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30)
  }
}

const progress = (text: string) => process.stderr.write(`[bench] ${text}\n`)

/**
 * `--scale [7 8 9]`: the scale scenarios (bench/scale.ts) instead, BENCH_SCALE_FACTOR multiplying every socket count;
 * bench/results/scale.json and scale.md (*.tmp for a partial run or a factor other than 1).
 */
async function scaleRun (): Promise<void> {
  const { hard } = openFileLimits()
  ensureDescriptors(Math.min(19_000, hard - 1024)) // every process here and below may then open as many files as allowed
  const started = Date.now()
  const loadAtStart = os.loadavg()[0]
  const results = await scaleScenarios(progress)
  const about = machine(loadAtStart)
  const durationS = Math.round((Date.now() - started) / 1000)
  console.log(textTable(about, results))
  const goals = results.flatMap(r => r.goals)
  const missed = goals.filter(g => !g.met)
  console.log(`\n${goals.length - missed.length} of ${goals.length} goals met${missed.length ? `; missed: ${missed.map(g => g.name).join(', ')}` : ''} (${durationS} s)`)
  const suffix = results.length === 3 && scaleFactor === 1 ? '' : '.tmp'
  mkdirSync(resultsDir, { recursive: true })
  const generatedAt = new Date().toISOString()
  const report = { machine: about, generatedAt, durationS, scaleFactor, goals, scenarios: results }
  writeFileSync(`${resultsDir}scale.json${suffix}`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${resultsDir}scale.md${suffix}`, markdownTable(about, results) + '\n')
  const chart = svgChart(about, results.flatMap(r => r.chart), generatedAt.slice(0, 10), 'npm run bench -- --scale')
  writeFileSync(`${resultsDir}scale.svg${suffix}`, chart)
  if (!suffix) writeFileSync(`${docsDir}performance-scale.svg`, chart)
}

async function main (): Promise<void> {
  if (process.argv.includes('--scale')) return scaleRun()
  const selected = new Set(process.argv.slice(2).map(Number).filter(n => n >= 1 && n <= 6))
  const all = selected.size === 0
  const wants = (id: number) => all || selected.has(id)
  const quick = process.env.BENCH_QUICK === '1'
  const budget: Budget = {
    rounds: Number(process.env.BENCH_ROUNDS) || (quick ? 2 : 16),
    roundMs: quick ? 700 : 1000,
    sockets: ensureDescriptors(quick ? 2000 : 10_000)
  }
  const started = Date.now()
  const loadAtStart = os.loadavg()[0]
  const results: ScenarioResult[] = []

  const plugin = await ServerHandle.start('plugin')
  const bare = await ServerHandle.start('bare')
  const servers = { plugin, bare }
  try {
    const tokens = await plugin.sign(budget.sockets)
    if (wants(1)) {
      progress('1 JSON handshake')
      // Signed by a process of their own: 200,000 tokens would leave the measured plugin process their garbage.
      const signer = await ServerHandle.start('plugin')
      const pool = new TokenPool(await signedAfterStart(signer, handshakeTokens(budget)).finally(() => signer.stop()))
      const verifying = await ServerHandle.start('bare-verify')
      try {
        results.push(await jsonHandshake(servers, verifying, pool, budget))
      } finally {
        await verifying.stop()
      }
    }
    if (wants(6)) {
      progress('6 ping/pong')
      results.push(await pingPong(servers, tokens, budget))
    }
    // The throughput comparisons come first, while the plugin's process has done no more than its baselines'. Run
    // after the 10,000-socket scenarios, whose heap and code state its process carries on, the GraphQL ratio was
    // 0.87 to 0.94 over four full runs (median 0.885) against 0.91 to 1.00 run on its own, and graphql-ws's process
    // is always a fresh one.
    if (wants(4)) {
      progress('4 GraphQL handshake')
      const baselines = {
        graphqlWs: await ServerHandle.start('graphql-ws'),
        verifying: await ServerHandle.start('graphql-ws-verify'),
        mercurius: await ServerHandle.start('mercurius')
      }
      try {
        results.push(await graphqlHandshake(plugin, baselines, tokens.slice(0, 100), budget))
      } finally {
        for (const server of Object.values(baselines)) await server.stop()
      }
    }
    let openMs = 4000
    if (wants(2)) {
      progress('2 memory per socket')
      // Each fresh process gets tokens signed after its start, by a process of their own.
      const signer = await ServerHandle.start('plugin')
      const memory = await memoryPerSocket(servers, tokens, budget, await startupMemory(), signer).finally(() => signer.stop())
      openMs = memory.openMs
      results.push(memory)
    }
    await bare.stop()
    if (wants(3)) {
      progress('3 expiry precision')
      results.push(await expiryPrecision(plugin, budget, openMs))
    }
    if (wants(5)) {
      progress('5 credential storm')
      results.push(await credentialStorm(plugin, tokens))
    }
  } finally {
    await plugin.stop()
    await bare.stop().catch(() => {})
  }

  results.sort((a, b) => a.id - b.id)
  const about = machine(loadAtStart)
  const generatedAt = new Date().toISOString()
  const durationS = Math.round((Date.now() - started) / 1000)
  console.log(textTable(about, results))
  const goals = results.flatMap(r => r.goals)
  const missed = goals.filter(g => !g.met)
  console.log(`\n${goals.length - missed.length} of ${goals.length} goals met${missed.length ? `; missed: ${missed.map(g => g.name).join(', ')}` : ''} (${durationS} s)`)

  // Only a full run is a result; a partial or quick one is kept beside it as *.tmp.
  const suffix = all && !quick ? '' : '.tmp'
  mkdirSync(resultsDir, { recursive: true })
  const report = { machine: about, generatedAt, durationS, budget, goals, scenarios: results }
  writeFileSync(`${resultsDir}results.json${suffix}`, JSON.stringify(report, null, 2) + '\n')
  const chart = svgChart(about, results.flatMap(r => r.chart), generatedAt.slice(0, 10))
  writeFileSync(`${resultsDir}chart.svg${suffix}`, chart)
  if (!suffix) writeFileSync(`${docsDir}performance.svg`, chart)
  writeFileSync(`${resultsDir}table.md${suffix}`, markdownTable(about, results) + '\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
