/**
 * `npm run conformance` inside the test suite: BuildKit's parser and lexer cases and the
 * real-world Dockerfiles of ../shared/corpus, read in place (never copied into the repository).
 */
import { describe, expect, it } from 'vitest'
import { findCorpus, runConformance } from '../../scripts/conformance.js'

const corpus = findCorpus()
if (!corpus) {
  console.warn('SKIPPED Dockerfile conformance: no corpus at ../shared/corpus (relative to the repository root)')
}

describe.skipIf(!corpus)('Dockerfile conformance over ../shared/corpus', () => {
  const results = corpus ? runConformance(corpus) : []
  const expected: Record<string, number> = {
    'buildkit-parser testfiles': 33,
    'buildkit-parser testfiles-negative': 4,
    'buildkit-parser testfile-line': 5,
    'buildkit-shell envVarTest': 228,
    'buildkit-shell wordsTest': 24,
    'real-world': 60,
  }
  for (const [suite, count] of Object.entries(expected)) {
    it(`${suite}: all ${count} cases pass`, () => {
      const r = results.find((x) => x.suite === suite)
      expect(r?.failures).toEqual([])
      expect(r?.passed).toBe(count)
    })
  }
})
