// What a run leaves: the table on stdout, results.json and a hand-written SVG chart.
import type { ChartRow, Row, ScenarioResult } from './scenarios.js'

export interface Machine {
  cores: number
  cpu: string
  node: string
  os: string
  memoryGiB: number
  /** 1-minute load average when the run started and when it ended: other work on the machine skews every number. */
  load: [number, number]
}

const columns = ['scenario', 'measure', 'fastify-realtime', 'baseline', 'ratio/value', 'goal', 'met'] as const

function cells (scenario: ScenarioResult, row: Row, first: boolean): string[] {
  const met = row.met === null ? '' : row.met ? 'yes' : 'NO'
  return [first ? `${scenario.id} ${scenario.title}` : '', row.measure, row.plugin, row.baseline, row.value, row.goal, met]
}

/** A plain-text table for the terminal. */
export function textTable (machine: Machine, scenarios: ScenarioResult[]): string {
  const lines = scenarios.flatMap(s => s.rows.map((row, i) => cells(s, row, i === 0)))
  const all = [[...columns], ...lines]
  const widths = columns.map((_c, i) => Math.max(...all.map(line => line[i].length)))
  const render = (line: string[]) => line.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()
  return [
    `machine: ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}, ${machine.os}, ${machine.memoryGiB} GiB; ` +
      `load average ${machine.load[0].toFixed(2)} at the start, ${machine.load[1].toFixed(2)} at the end`,
    '',
    render(all[0]),
    widths.map(w => '-'.repeat(w)).join('  '),
    ...lines.map(render)
  ].join('\n')
}

const escapeCell = (text: string) => text.replace(/\|/g, '\\|')

/** The same table as Markdown, for the README. */
export function markdownTable (machine: Machine, scenarios: ScenarioResult[]): string {
  const lines = scenarios.flatMap(s => s.rows.map((row, i) => cells(s, row, i === 0)))
  return [
    `Machine: ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}, ${machine.os}; load average ` +
      `${machine.load[0].toFixed(2)} at the start of the run, ${machine.load[1].toFixed(2)} at its end.`,
    '',
    `| ${columns.join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...lines.map(line => `| ${line.map(escapeCell).join(' | ')} |`)
  ].join('\n')
}

const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const palette = ['#2f6fdf', '#9aa3ad', '#c9cfd6']

function compact (value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (value >= 10_000) return `${Math.round(value / 1000)}k`
  if (value >= 100) return Math.round(value).toLocaleString('en-US')
  return value.toFixed(value < 10 ? 2 : 1)
}

/**
 * One row per measure, each on its own scale (its largest bar or goal), fastify-realtime first, the baselines in
 * grey, the goal as a dashed red mark.
 */
export function svgChart (machine: Machine, rows: ChartRow[], generatedAt: string, command = 'npm run bench'): string {
  const width = 900
  const labelWidth = 240
  // Room on the right for the longest value label.
  const barArea = width - labelWidth - 250
  const barHeight = 16
  const gap = 4
  const rowGap = 18
  const top = 58
  let y = top
  const parts: string[] = []
  for (const row of rows) {
    const scale = Math.max(...row.bars.map(b => b.value), row.limit?.value ?? 0) * 1.08 || 1
    const rowHeight = row.bars.length * (barHeight + gap) - gap
    parts.push(`<text x="${labelWidth - 12}" y="${y + rowHeight / 2 + 4}" text-anchor="end" class="label">${xml(row.label)}</text>`)
    const labels: string[] = []
    row.bars.forEach((bar, i) => {
      const w = Math.max(1, (bar.value / scale) * barArea)
      const by = y + i * (barHeight + gap)
      parts.push(`<rect x="${labelWidth}" y="${by}" width="${w.toFixed(1)}" height="${barHeight}" fill="${palette[Math.min(i, palette.length - 1)]}"><title>${xml(`${bar.name}: ${compact(bar.value)}${row.unit}`)}</title></rect>`)
      labels.push(`<text x="${(labelWidth + w + 6).toFixed(1)}" y="${by + barHeight - 4}" class="value">${xml(`${compact(bar.value)}${row.unit}  ${bar.name}`)}</text>`)
    })
    // The goal mark under the value labels, which have a halo to stay readable over it.
    const mark = parts.length
    parts.push(...labels)
    if (row.limit) {
      const x = labelWidth + (row.limit.value / scale) * barArea
      parts.splice(mark, 0, `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y - 4}" y2="${y + rowHeight + 4}" class="goal"/>`)
      parts.push(`<text x="${x.toFixed(1)}" y="${y + rowHeight + 14}" text-anchor="middle" class="goaltext">${xml(`goal ${row.limit.better === 'above' ? '≥' : '≤'} ${row.limit.label}`)}</text>`)
    }
    y += rowHeight + rowGap + (row.limit ? 10 : 0)
  }
  const height = y + 10
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<style>.label{font-size:12px;fill:#222}.value{font-size:11px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}.goal{stroke:#d43c3c;stroke-width:2;stroke-dasharray:4 3}.goaltext{font-size:10px;fill:#d43c3c}.title{font-size:15px;font-weight:600;fill:#111}.sub{font-size:11px;fill:#555}</style>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="24" class="title">fastify-realtime benchmarks (${command})</text>`,
    `<text x="16" y="42" class="sub">${xml(`${machine.cores} cores, ${machine.cpu}, Node ${machine.node}; load average ${machine.load[0].toFixed(1)} to ${machine.load[1].toFixed(1)}; medians of alternating rounds; ${generatedAt}`)}</text>`,
    ...parts,
    '</svg>',
    ''
  ].join('\n')
}
