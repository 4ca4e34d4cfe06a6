/**
 * Dockerfile import at scale: `fromDockerfile` of 100k instructions (global ARGs, one stage's ARGs
 * and mixed instructions, and named stages each copying from the one before), against parsing the
 * same text alone (the floor: lowering into builders should cost a small multiple of reading the
 * file, and grow linearly with it). Median of 3 runs in this process.
 */
import { fromDockerfile } from '../../src/dockerfile/import.js'
import { parseDockerfile } from '../../src/dockerfile/parser.js'
import type { BenchCase, BenchRow } from '../types.js'

const INSTRUCTIONS = 100_000
const RUNS = 3

function dockerfile(n: number): string {
  const q = n / 4
  const lines: string[] = []
  for (let i = 0; i < q; i++) lines.push(`ARG G${i}=${i}`)
  lines.push('FROM scratch AS s0')
  for (let i = 0; i < q; i++) lines.push(`ARG A${i}=$A${Math.max(0, i - 1)}`)
  for (let i = 0; i < q; i++) lines.push([`ENV E${i}=${i}`, `RUN echo ${i}`, `COPY a${i} /b`, `LABEL l${i}=v`, `WORKDIR /w${i}`][i % 5]!)
  for (let i = 0; i < q / 2; i++) lines.push(`FROM scratch AS s${i + 1}`, `COPY --from=s${i} /a /a`)
  return `${lines.join('\n')}\n`
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t0) / 1e9
}

const dockerfileImport: BenchCase = {
  name: 'dockerfile-import',
  async run(): Promise<readonly BenchRow[]> {
    const text = dockerfile(INSTRUCTIONS)
    const parse = Array.from({ length: RUNS }, () => timed(() => parseDockerfile(text)))
    const lower = Array.from({ length: RUNS }, () => timed(() => fromDockerfile(text)))
    return [{
      case: `dockerfile import: ${INSTRUCTIONS / 1000}k instructions`,
      imagesmithS: median(lower),
      floorS: median(parse),
      targetRatio: 4,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
      rssLimitMB: 1024,
      notes: ['floor: parseDockerfile of the same text; peak RSS is the bench process\'s whole run so far'],
    }]
  },
}

export default dockerfileImport
