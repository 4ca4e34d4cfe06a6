/** `--progress plain` as a user reads a failed RUN: each output line once, whole, and the error's tail not repeated. */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxLayout, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'

let work: string

beforeAll(async () => {
  work = await tmpDir('ism-plain-')
  mkdirSync(join(work, 'ctx'))
  writeFileSync(join(work, 'ctx', 'Dockerfile'), [
    `FROM oci:${busyboxLayout()}`,
    `RUN set -x; printf 'Downloading'; sleep 0.2; printf ' .'; sleep 0.2; printf ' . done\\n'; echo marker-line >&2; exit 3`,
    '',
  ].join('\n'))
})
afterAll(cleanupTmpDirs)

describe('imagesmith build --progress plain, a failing RUN', () => {
  it('prints whole lines once each, and the error without the output again', () => {
    const bin = resolve(__dirname, '../../bin/imagesmith.js')
    const r = spawnSync(process.execPath, [bin, 'build', '--progress', 'plain', '--network', 'none', join(work, 'ctx')], {
      cwd: work, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache'), CI: '1' }, timeout: 120_000,
    })
    expect(r.status, r.stderr).toBe(1)
    const lines = r.stderr.split('\n')
    expect(lines.filter((l) => l.includes('marker-line') && !l.includes('echo'))).toEqual(['#2 marker-line'])
    expect(lines).toContain('#2 Downloading . . done')
    expect(lines).toContain("#2 + printf ' . done\\n'")
    expect(lines.find((l) => l.startsWith('error [RUN_FAILED]:'))).toMatch(/exited with code 3 \(its output is above\)$/)
  })
})
