/** The build's error gateway on real errno errors (made by real fs calls) and on typed errors. */
import { mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorCodes, ExecError, ImagesmithError } from '../../src/errors.js'
import { toBuildError } from '../../src/pipeline/error-gateway.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

afterAll(async () => {
  await cleanupTmpDirs()
})

const thrown = (fn: () => unknown): unknown => {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

describe('toBuildError', () => {
  it('keeps a typed error and its class, adding the failing step', () => {
    const exec = new ExecError(['/bin/sh', '-c', 'false'], 1, '')
    const out = toBuildError(exec, { contextDir: '/ctx', cacheDir: '/cache' }, { phase: 'solve', step: 'RUN false', vertex: 'sha256:1' })
    expect(out).toBeInstanceOf(ExecError)
    expect(out.code).toBe(ErrorCodes.RUN_FAILED)
    expect(out.details).toMatchObject({ command: ['/bin/sh', '-c', 'false'], exitCode: 1, step: 'RUN false', vertex: 'sha256:1' })
    expect(out.stack).toBe(exec.stack)
    // a step the thrower named already wins
    const own = new ImagesmithError(ErrorCodes.COPY_SOURCE_NOT_FOUND, 'x', { step: 'COPY a b' })
    expect(toBuildError(own, { contextDir: '', cacheDir: '' }, { phase: 'solve', step: 'other' }).details.step).toBe('COPY a b')
  })

  it('maps errno errors by errno and by whose path it is', async () => {
    const dir = await tmpDir('ism-gateway-')
    const ctx = join(dir, 'ctx')
    mkdirSync(ctx)
    symlinkSync('loop', join(ctx, 'loop'))
    const loop = toBuildError(thrown(() => statSync(join(ctx, 'loop'))), { contextDir: ctx, cacheDir: join(dir, 'cache') }, { phase: 'solve', step: 'COPY loop /x' })
    expect(loop.code).toBe(ErrorCodes.SYMLINK_LOOP)
    expect(loop.details).toMatchObject({ path: join(ctx, 'loop'), errno: 'ELOOP', step: 'COPY loop /x' })
    expect((loop.cause as NodeJS.ErrnoException).code).toBe('ELOOP')

    const missing = toBuildError(thrown(() => readFileSync(join(dir, 'nope'))), { contextDir: ctx, cacheDir: join(dir, 'cache') }, { phase: 'solve' })
    expect(missing.code).toBe(ErrorCodes.INTERNAL)
    expect(missing.details).toMatchObject({ path: join(dir, 'nope'), errno: 'ENOENT', syscall: 'open' })
  })

  it('turns anything else into INTERNAL with the cause and the step', () => {
    const boom = new TypeError('x is not a function')
    const out = toBuildError(boom, { contextDir: '/ctx', cacheDir: '/cache' }, { phase: 'solve', step: 'WORKDIR /app' })
    expect(out).toBeInstanceOf(ImagesmithError)
    expect(out.code).toBe(ErrorCodes.INTERNAL)
    expect(out.cause).toBe(boom)
    expect(out.details.step).toBe('WORKDIR /app')
    expect(out.message).toContain('x is not a function')
    expect(toBuildError('a string', { contextDir: '', cacheDir: '' }, { phase: 'prepare' }).code).toBe(ErrorCodes.INTERNAL)
  })
})
