/** The README's CLI synopsis is the one place users read the build flags: it names every flag `build` takes. */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BUILD_FLAGS } from '../../src/cli/main.js'

const readme = readFileSync(join(resolve(__dirname, '../..'), 'README.md'), 'utf8')

describe('README', () => {
  it('lists every flag of imagesmith build in its CLI synopsis', () => {
    const start = readme.indexOf('## CLI\n')
    const block = readme.slice(readme.indexOf('```', start), readme.indexOf('```', readme.indexOf('```', start) + 3))
    const short: Record<string, string> = { '--tag': '-t', '--output': '-o', '--file': '-f' }
    const missing = BUILD_FLAGS.filter((f) => !new RegExp(`[\\s\\[|]${f}[\\s=\\]]`).test(block) && !(short[f] && block.includes(`[${short[f]} `)))
    expect(missing).toEqual([])
  })
})
