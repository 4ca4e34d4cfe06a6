/** What the Dockerfile fuzz and round-trip tests start from: a seeded generator and the seed files. */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { findCorpus } from '../../scripts/conformance.js'

export { prng } from './prng.js'

/** The test fixtures, then (when ../shared/corpus is there) the corpus's real-world Dockerfiles and BuildKit's parser cases. */
export function seedDockerfiles(): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = []
  const fixtures = join(import.meta.dirname, '../fixtures/dockerfile')
  for (const f of readdirSync(fixtures).sort()) out.push({ name: f, text: readFileSync(join(fixtures, f), 'utf8') })
  const corpus = findCorpus()
  if (corpus) {
    const real = join(corpus, 'real-world')
    for (const f of readdirSync(real).filter((n) => n.endsWith('.Dockerfile')).sort()) out.push({ name: f, text: readFileSync(join(real, f), 'utf8') })
    const cases = join(corpus, 'buildkit-parser/testfiles')
    for (const d of readdirSync(cases).sort()) out.push({ name: d, text: readFileSync(join(cases, d, 'Dockerfile'), 'utf8') })
  }
  return out
}
