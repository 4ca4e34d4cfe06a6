/** Solve-time `$VAR` expansion (ops/expand-spec.ts), the decision in graph/expansion.ts. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ErrorCodes, image } from '../../src/index.js'
import { literalConfigSpec, literalCopySpec, literalRunSpec, stageEnv } from '../../src/ops/expand-spec.js'
import type { ImageState } from '../../src/solver/types.js'

const state = (env: string[], args: { name: string; value?: string }[] = []): ImageState => ({
  config: { architecture: 'amd64', os: 'linux', config: { Env: env }, rootfs: { type: 'layers', diff_ids: [] } },
  layers: [],
  args,
  cmdSet: false,
})
const copy = { sources: ['$SRC', '${DIR:-d}/*.txt'], dest: '"$HOME/x y"/', fromInput: false, chown: '$UID:${GID}', chmod: '$MODE', exclude: ['$EX'], link: false, expand: true as const }

describe('solve-time expansion', () => {
  it('the env is the image ENV, then ARGs with a value that no ENV overrides', () => {
    const s = state(['HOME=/root', 'A=env'], [{ name: 'A', value: 'arg' }, { name: 'B', value: 'b' }, { name: 'C' }])
    expect([...stageEnv(s)]).toEqual([['HOME', '/root'], ['A', 'env'], ['B', 'b']])
  })

  it('COPY/ADD: sources, dest, chown, chmod, exclude expanded, quotes removed, marker dropped', () => {
    const s = state(['HOME=/home/u', 'UID=10', 'GID=20'], [{ name: 'SRC', value: 'a b' }, { name: 'MODE', value: '0750' }, { name: 'EX', value: '*.md' }])
    expect(literalCopySpec(copy, s)).toEqual({ sources: ['a b', 'd/*.txt'], dest: '/home/u/x y/', fromInput: false, chown: '10:20', chmod: '750', exclude: ['*.md'], link: false })
    expect(() => literalCopySpec(copy, state([], [{ name: 'MODE', value: 'rwx' }]))).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }))
    // A literal spec is returned as it is.
    const lit = { ...copy, expand: undefined }
    expect(literalCopySpec(lit, s)).toBe(lit)
  })

  it('heredoc content: only $ is processed, quotes stay; a quoted delimiter keeps it verbatim', () => {
    const spec = { ...copy, sources: [], chown: undefined, chmod: undefined, exclude: [], dest: '/', inline: [{ name: 'a', data: `"$HOME" '$HOME' \\$HOME\n`, expand: true as const }, { name: 'b', data: '$HOME\n' }] }
    expect(literalCopySpec(spec, state(['HOME=/h'])).inline).toEqual([{ name: 'a', data: `"/h" '/h' $HOME\n` }, { name: 'b', data: '$HOME\n' }])
  })

  it('config ops: ENV sees the env before the instruction; EXPOSE splits; a backtick escape; ARG defaults; a --build-arg value stays literal', () => {
    const s = state(['A=1'], [{ name: 'P', value: '80 443/udp' }])
    expect(literalConfigSpec({ op: 'env', vars: [['A', '2'], ['B', '$A']], expand: true }, s)).toEqual({ op: 'env', vars: [['A', '2'], ['B', '1']] })
    expect(literalConfigSpec({ op: 'expose', ports: ['$P', '8080'], expand: true }, s)).toEqual({ op: 'expose', ports: ['80/tcp', '443/udp', '8080/tcp'] })
    expect(literalConfigSpec({ op: 'workdir', path: 'C:`$A', expand: true, escapeToken: '`' }, s)).toEqual({ op: 'workdir', path: 'C:$A' })
    expect(literalConfigSpec({ op: 'arg', args: [{ name: 'X', value: '${A}x', expand: true }, { name: 'Y', value: '$A' }] }, s)).toEqual({
      op: 'arg', args: [{ name: 'X', value: '1x' }, { name: 'Y', value: '$A' }],
    })
    expect(() => literalConfigSpec({ op: 'stopsignal', signal: '$NOPE', expand: true }, s)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_SIGNAL }))
    expect(() => literalConfigSpec({ op: 'workdir', path: '${A:?must be set}${NOPE:?is unset}', expand: true }, s)).toThrow(expect.objectContaining({ code: ErrorCodes.EXPANSION_FAILED }))
  })
})

describe('RUN --mount words', () => {
  it('target, source, id and env expand against the stage env; the command does not', () => {
    const s = state(['HOME=/root', 'E=TOKEN'])
    const spec = {
      command: ['echo $HOME'], shellForm: true, network: 'default' as const, expand: true as const,
      mounts: [
        { type: 'cache' as const, target: '$HOME/.cache', id: '$HOME/.cache', sharing: 'shared' as const, readonly: false },
        { type: 'bind' as const, target: '.', source: '${HOME}/src', readwrite: false },
        { type: 'secret' as const, id: 'tok', target: '', env: '$E', required: false, mode: 0o400, uid: 0, gid: 0 },
      ],
    }
    expect(literalRunSpec(spec, s)).toEqual({
      command: ['echo $HOME'], shellForm: true, network: 'default',
      mounts: [
        { type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'shared', readonly: false },
        { type: 'bind', target: '.', source: '/root/src', readwrite: false },
        { type: 'secret', id: 'tok', target: '', env: 'TOKEN', required: false, mode: 0o400, uid: 0, gid: 0 },
      ],
    })
  })
})

describe('cache keys hold the expanded values', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ism-expand-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('COPY $SRC with SRC=a.txt shares its layer with COPY a.txt; another value is another key', async () => {
    writeFileSync(join(dir, 'a.txt'), 'a\n')
    writeFileSync(join(dir, 'b.txt'), 'b\n')
    const opts = { context: dir, cacheDir: join(dir, 'cache'), sourceDateEpoch: 0 }
    const key = async (b: ReturnType<typeof image>) => (await b.build(opts)).vertices.find((v) => v.key)!.key
    const literal = await key(image().from('scratch').copy('a.txt', '/a.txt'))
    const marked = image().from('scratch').arg('SRC', 'a.txt').copy('$SRC', '/a.txt', { expand: true })
    expect(await key(marked)).toBe(literal)
    expect(await key(image().from('scratch').arg('SRC', 'b.txt').copy('$SRC', '/a.txt', { expand: true }))).not.toBe(literal)
    // The vertex keys differ (the words as written), the layer is the same.
    expect(marked.graph().outputs[0]!.vertex).not.toBe(image().from('scratch').arg('SRC', 'a.txt').copy('a.txt', '/a.txt').graph().outputs[0]!.vertex)
  })
})
