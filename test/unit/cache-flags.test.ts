import { describe, expect, it } from 'vitest'
import { checkCacheExports, checkCacheImports, type CacheExportSpec } from '../../src/cache-share/options.js'
import { parseArgs, UsageError } from '../../src/cli/args.js'
import { cacheFlags } from '../../src/cli/buildx-flags.js'
import { ErrorCodes } from '../../src/errors.js'
import { thrown } from '../helpers/thrown.js'

const flags = (...argv: string[]) => cacheFlags(parseArgs(['build', 'x.ts', ...argv]))

describe('--cache-to / --cache-from', () => {
  it("takes buildx's csv, and a bare --cache-from REF as type=registry,ref=REF", () => {
    expect(
      flags('--cache-from', 'r.example/app:1', '--cache-from', 'type=registry,ref=r.example/app:cache', '--cache-from', 'type=local,src=dir,tag=t', '--cache-to', 'type=registry,ref=r.example/app:cache,mode=max', '--cache-to', 'type=local,dest=d', '--cache-to', 'type=inline'),
    ).toEqual({
      cacheFrom: [{ type: 'registry', ref: 'r.example/app:1' }, { type: 'registry', ref: 'r.example/app:cache' }, { type: 'local', src: 'dir', tag: 't' }],
      cacheTo: [{ type: 'registry', ref: 'r.example/app:cache', mode: 'max' }, { type: 'local', dest: 'd' }, { type: 'inline' }],
    })
    expect(flags()).toEqual({})
  })

  it('refuses what it would not honour, as usage errors naming the flag', () => {
    for (const argv of [
      ['--cache-to', 'type=inline,mode=max'],
      ['--cache-to', 'type=gha'],
      ['--cache-to', 'type=registry'],
      ['--cache-to', 'type=registry,ref=r/x,mode=all'],
      ['--cache-to', 'type=local,dest=d,compression=zstd'],
      ['--cache-from', 'type=local'],
      ['--cache-from', 'type=s3,bucket=b'],
    ]) {
      let err: unknown
      try {
        flags(...argv)
      } catch (e) {
        err = e
      }
      expect(err, argv.join(' ')).toBeInstanceOf(UsageError)
      expect((err as Error).message, argv.join(' ')).toContain(argv[0])
    }
  })

  it('checks the API options with CACHE_OPTION_INVALID naming the entry', () => {
    const e = thrown(() => checkCacheExports([{ type: 'registry', ref: 'r/x' }, { type: 'inline', mode: 'max' } as unknown as CacheExportSpec]))
    expect(e.code).toBe(ErrorCodes.CACHE_OPTION_INVALID)
    expect(e.details).toEqual({ option: 'cacheTo[1]' })
    expect(thrown(() => checkCacheImports([{ type: 'local', src: '' }])).details).toEqual({ option: 'cacheFrom[0]' })
  })
})
