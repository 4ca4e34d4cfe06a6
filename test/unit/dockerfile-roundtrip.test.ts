/**
 * Property: for every Dockerfile that imports, print → import gives the same graph. "The same" is
 * what the rest of the project compares (dockerfile-corpus, dockerfile-digest): every stage's vertex
 * keys, in order — kind, spec and inputs, so every instruction and value; never line numbers,
 * comments or descriptions. Printing the re-imported stage again gives the same text (the printer
 * is a fixpoint after one round). A stage the printer refuses with NOT_REPRESENTABLE is counted, not
 * failed: the classes that truly have no spelling (a flag value holding part of a UTF-8 character,
 * an image reference with a blank, inline files beside paths the heredoc lexer would misread) must
 * stay rare.
 *
 * Inputs: the corpus at ../shared/corpus (skipped loudly when absent), the fixtures in
 * test/fixtures/dockerfile, and seeded mutants of all of them (characters and tokens inserted,
 * deleted, duplicated: quotes, escapes, `$`, CR, LF, `=`, blanks, flags, heredoc markers).
 */
import { describe, expect, it } from 'vitest'
import { findCorpus } from '../../scripts/conformance.js'
import { prng, seedDockerfiles } from '../helpers/dockerfile-seeds.js'
import { fromDockerfile, isImagesmithError, toDockerfile, type ImageBuilder } from '../../src/index.js'

const MUTANTS = 3000
const SEED = 0x7e57_4b1d


const corpus = findCorpus()
if (!corpus) console.warn('SKIPPED Dockerfile round trip over the corpus: no corpus at ../shared/corpus (relative to the repository root); fixtures and their mutants only')

const seeds = seedDockerfiles

/** Pieces that reach the corners of the parser, the lexer and the printer's quoting. */
const TOKENS = [
  '\\', '\\\n', '\\\\', '`', '"', "'", '$', '${', '}', '$A', '${A:-x}', '=', ' ', '  ', '\t', '\r', '\n', '\r\n', '#', '# x\n',
  '[', ']', '["', '", "', '"]', ',', '<<', '<<EOF', "<<'EOF'", '<<-EOF', 'EOF\n', '--', '--from=', '--chown=', '--chmod=', '--link',
  '--exclude=', '--mount=', '--network=', '--interval=', '--retries=', '--timeout=', '0', '0s', 'AS ', ' as x', ':', '/', '@', '*',
  'RUN ', 'COPY ', 'ADD ', 'ENV ', 'LABEL ', 'ARG ', 'CMD ', 'ENTRYPOINT ', 'HEALTHCHECK ', 'ONBUILD ', 'SHELL ', 'USER ', 'WORKDIR ',
  'EXPOSE ', 'VOLUME ', 'STOPSIGNAL ', 'MAINTAINER ', 'FROM ', 'é', '\u00a0', '😀',
]

function mutate(text: string, rnd: () => number): string {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  let t = text
  const rounds = 1 + Math.floor(rnd() * 3)
  for (let r = 0; r < rounds; r++) {
    const a = Math.floor(rnd() * (t.length + 1))
    const b = Math.min(t.length, a + 1 + Math.floor(rnd() * 12))
    switch (Math.floor(rnd() * 6)) {
      case 0:
        t = t.slice(0, a) + t.slice(b)
        break
      case 1:
        t = t.slice(0, a) + t.slice(a, b).repeat(2) + t.slice(b)
        break
      case 2:
        t = t.slice(0, a) + t.slice(a + 1)
        break
      case 3:
        t = t.slice(0, a) + pick(TOKENS) + pick(TOKENS) + t.slice(a)
        break
      default:
        t = t.slice(0, a) + pick(TOKENS) + t.slice(a)
    }
  }
  return t
}

const keys = (b: ImageBuilder): string[] => b.graph().vertices.map((v) => v.id)

/**
 * undefined when `text` does not import (nothing to check) or every stage round-trips; otherwise
 * what went wrong. Each distinct stage is printed on its own, with the Dockerfile's stage names.
 */
function roundTrip(text: string): { imported: boolean; refused?: boolean; problem?: string } {
  let imported: ReturnType<typeof fromDockerfile>
  try {
    imported = fromDockerfile(text)
    // A file whose own graph cannot be made (an ONBUILD trigger that does not lower) is not imported either.
    for (const s of imported.stageList) s.graph()
  } catch (e) {
    if (isImagesmithError(e)) return { imported: false }
    throw e
  }
  const done = new Set<unknown>()
  for (const [i, stage] of imported.stageList.entries()) {
    if (done.has(stage.toStage())) continue
    done.add(stage.toStage())
    let printed = ''
    try {
      printed = toDockerfile(stage, { names: imported.stages })
      const reread = fromDockerfile(printed)
      const again = reread.target
      if (JSON.stringify(keys(again)) !== JSON.stringify(keys(stage))) return { imported: true, problem: `stage ${i}: different graph\n--- printed ---\n${printed}` }
      const twice = toDockerfile(again, { names: reread.stages })
      if (twice !== printed) return { imported: true, problem: `stage ${i}: printed again differently\n--- first ---\n${printed}\n--- second ---\n${twice}` }
    } catch (e) {
      if (isImagesmithError(e) && e.code === 'NOT_REPRESENTABLE' && printed === '') return { imported: true, refused: true }
      return { imported: true, problem: `stage ${i}: ${e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e)}\n--- printed ---\n${printed}` }
    }
  }
  return { imported: true }
}

describe('Dockerfile round trip: import → print → import gives the same graph', () => {
  const base = seeds()

  it(`every seed file (corpus: ${corpus ? 'present' : 'ABSENT'}) round-trips`, () => {
    const failures: string[] = []
    let imported = 0
    for (const s of base) {
      const r = roundTrip(s.text)
      if (r.imported) imported++
      if (r.problem || r.refused) failures.push(`${s.name}: ${r.problem ?? 'refused'}`)
    }
    expect(failures.slice(0, 3)).toEqual([])
    // The fixtures at least; with the corpus, its 60 real files and BuildKit's parser cases too.
    expect(imported).toBeGreaterThanOrEqual(corpus ? 80 : 4)
  }, 120_000)

  it(`${MUTANTS} seeded mutants: every one that imports round-trips`, () => {
    const rnd = prng(SEED)
    const failures: string[] = []
    let imported = 0
    let refused = 0
    for (let i = 0; i < MUTANTS; i++) {
      const seed = base[Math.floor(rnd() * base.length)]!
      const mutant = mutate(seed.text, rnd)
      const r = roundTrip(mutant)
      if (r.imported) imported++
      if (r.refused) refused++
      if (r.problem) failures.push(`mutant ${i} of ${seed.name}: ${r.problem}\n--- input ---\n${mutant}`)
    }
    expect(failures.slice(0, 3)).toEqual([])
    // Most mutants must import, or the property says little; refusals stay rare.
    expect(imported).toBeGreaterThan(MUTANTS / 3)
    expect(refused).toBeLessThan(imported / 100)
  }, 300_000)
})
