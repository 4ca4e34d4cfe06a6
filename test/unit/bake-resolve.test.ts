import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bakePrintJson, parseBakeFiles, resolveBake } from '../../src/bake/index.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { thrown } from '../helpers/thrown.js'

const fixture = join(__dirname, '../fixtures/bake/docker-bake.json')
const config = () => parseBakeFiles([{ name: fixture, text: readFileSync(fixture, 'utf8') }])
const bake = (doc: unknown) => parseBakeFiles([{ name: 'docker-bake.json', text: JSON.stringify(doc) }])

describe('bake inherits', () => {
  it('merges parents over several levels, the target’s own keys winning', () => {
    const api = resolveBake(config(), ['api']).targets.api!
    // _common <- _service <- api
    expect(api.args).toEqual({ NODE_VERSION: '20', BUILD_MODE: 'service' })
    expect(api.dockerfile).toBe('docker/service.Dockerfile')
    expect(api.context).toBe('services/api')
    expect(api.platforms).toEqual(['linux/amd64', 'linux/arm64'])
  })

  it('lets a later parent override an earlier one (buildx TestNestedInherits)', () => {
    const c = bake({
      target: {
        a: { args: { foo: '123', bar: '234' } },
        b: { inherits: ['a'], args: { bar: '567' } },
        c: { inherits: ['a'], args: { baz: '890' } },
        d: { inherits: ['b', 'c'] },
        e: { inherits: ['c', 'b'], tags: ['own'] },
      },
    })
    const plan = resolveBake(c, ['d', 'e'])
    // c re-merges a's bar=234 after b's bar=567: the last parent wins, as buildx.
    expect(plan.targets.d!.args).toEqual({ foo: '123', bar: '234', baz: '890' })
    expect(plan.targets.e!.args).toEqual({ foo: '123', bar: '567', baz: '890' })
    expect(plan.targets.e!.tags).toEqual(['own'])
  })

  it('replaces tags, platforms and outputs but appends cache-from and annotations', () => {
    const c = bake({
      target: {
        p: { tags: ['p'], platforms: ['linux/amd64'], 'cache-from': ['type=gha'], annotations: ['a=1'] },
        t: { inherits: ['p'], tags: ['t'], 'cache-from': ['type=local,src=c'], annotations: ['b=2'] },
      },
    })
    const t = resolveBake(c, ['t']).targets.t!
    expect(t.tags).toEqual(['t'])
    expect(t.platforms).toEqual(['linux/amd64'])
    expect(t.cacheFrom).toEqual([{ type: 'gha' }, { type: 'local', src: 'c' }])
    expect(t.annotations).toEqual(['a=1', 'b=2'])
  })

  it('refuses an inherits cycle with its path', () => {
    const e = thrown(() => resolveBake(bake({ target: { a: { inherits: ['b'] }, b: { inherits: ['c'] }, c: { inherits: ['a'] } } }), ['a']))
    expect(e.code).toBe(ErrorCodes.BAKE_CYCLE)
    expect(e.details).toMatchObject({ kind: 'inherits', cycle: ['a', 'b', 'c', 'a'] })
    expect(thrown(() => resolveBake(bake({ target: { a: { inherits: ['a'] } } }), ['a'])).details.cycle).toEqual(['a', 'a'])
  })

  it('resolves a diamond once, without calling it a cycle', () => {
    const c = bake({ target: { base: { args: { X: '1' } }, l: { inherits: ['base'] }, r: { inherits: ['base'] }, top: { inherits: ['l', 'r'] } } })
    expect(resolveBake(c, ['top']).targets.top!.args).toEqual({ X: '1' })
  })

  it('names a missing parent and the available targets', () => {
    const e = thrown(() => resolveBake(bake({ target: { a: { inherits: ['nope'] } } }), ['a']))
    expect(e.code).toBe(ErrorCodes.TARGET_NOT_FOUND)
    expect(e.details).toMatchObject({ target: 'nope', inheritedBy: 'a', targets: ['a'] })
  })
})

describe('bake groups', () => {
  it('builds the default group when nothing is named, expanding nested groups in order', () => {
    const plan = resolveBake(config())
    expect(Object.keys(plan.targets)).toEqual(['api', 'deps', 'web', 'worker'])
    expect(plan.groups.default!.targets).toEqual(['services'])
    expect(plan.groups.services!.targets).toEqual(['api', 'web', 'worker'])
    // deps is only a context of api.
    expect(plan.targets.deps!.linked).toBe(true)
    expect(plan.targets.api!.linked).toBe(false)
  })

  it('dedupes targets reached through several groups and names, and lists what was asked in default', () => {
    const plan = resolveBake(config(), ['all', 'api', 'services'])
    expect(Object.keys(plan.targets)).toEqual(['api', 'deps', 'tools', 'web', 'worker'])
    expect(plan.groups.default!.targets).toEqual(['all', 'api', 'services'])
    expect(Object.keys(plan.groups)).toEqual(['all', 'default', 'services'])
  })

  it('matches patterns against groups and targets', () => {
    expect(Object.keys(resolveBake(config(), ['w*']).targets)).toEqual(['web', 'worker'])
    expect(thrown(() => resolveBake(config(), ['zz*'])).code).toBe(ErrorCodes.TARGET_NOT_FOUND)
  })

  it('refuses a group cycle with its path', () => {
    const e = thrown(() => resolveBake(bake({ group: { a: { targets: ['b'] }, b: { targets: ['t', 'a'] } }, target: { t: {} } }), ['a']))
    expect(e.code).toBe(ErrorCodes.BAKE_CYCLE)
    expect(e.details).toMatchObject({ kind: 'group', cycle: ['a', 'b', 'a'] })
  })

  it('names what exists when a requested name does not', () => {
    const e = thrown(() => resolveBake(config(), ['nope']))
    expect(e.code).toBe(ErrorCodes.TARGET_NOT_FOUND)
    expect(e.details.targets).toContain('api')
    expect(e.details.groups).toContain('services')
    expect(thrown(() => resolveBake(bake({ target: { a: {} } }))).details.target).toBe('default')
  })

  it('refuses nesting deeper than its bound instead of recursing', () => {
    const group: Record<string, { targets: string[] }> = {}
    for (let i = 0; i < 100; i++) group[`g${i}`] = { targets: [`g${i + 1}`] }
    const e = thrown(() => resolveBake(bake({ group, target: { g100: {} } }), ['g0']))
    expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
  })
})

describe('bake target contexts', () => {
  it('records target:NAME contexts as dependencies and pulls them in as cacheonly', () => {
    const plan = resolveBake(config(), ['api'])
    expect(plan.targets.api!.dependsOn).toEqual(['deps'])
    expect(plan.targets.deps).toMatchObject({ linked: true, outputs: [{ type: 'cacheonly' }], target: 'deps' })
  })

  it('keeps a dependency’s own outputs when it was asked for too', () => {
    const plan = resolveBake(bake({ target: { base: { output: ['type=oci,dest=b.tar'] }, app: { contexts: { base: 'target:base', src: './src' } } } }), ['app', 'base'])
    expect(plan.targets.base).toMatchObject({ linked: false, outputs: [{ type: 'oci', dest: 'b.tar' }] })
    expect(plan.targets.app!.dependsOn).toEqual(['base'])
  })

  it('refuses a target that reaches itself through contexts', () => {
    const e = thrown(() => resolveBake(bake({ target: { a: { contexts: { x: 'target:b' } }, b: { contexts: { y: 'target:a' } } } }), ['a']))
    expect(e.code).toBe(ErrorCodes.BAKE_CYCLE)
    expect(e.details).toMatchObject({ kind: 'context', cycle: ['a', 'b', 'a'] })
    expect(thrown(() => resolveBake(bake({ target: { a: { contexts: { x: 'target:a' } } } }), ['a'])).details.cycle).toEqual(['a', 'a'])
  })

  it('refuses a dependency built for fewer platforms than its user', () => {
    const e = thrown(() => resolveBake(bake({ target: { b: { platforms: ['linux/amd64', 'linux/arm64'] }, a: { platforms: ['linux/amd64', 'linux/s390x'], contexts: { b: 'target:b' } } } }), ['a']))
    expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
    expect(e.details).toMatchObject({ target: 'a', dependency: 'b' })
  })
})

describe('bake --print', () => {
  it('prints { group, target } with buildx key names and order, empty keys left out', () => {
    const out = bakePrintJson(resolveBake(config(), ['api']))
    const doc = JSON.parse(out) as { group: Record<string, { targets: string[] }>; target: Record<string, Record<string, unknown>> }
    expect(Object.keys(doc)).toEqual(['group', 'target'])
    expect(doc.group.default!.targets).toEqual(['api'])
    expect(Object.keys(doc.target)).toEqual(['api', 'deps'])
    const api = doc.target.api!
    expect(Object.keys(api)).toEqual(['context', 'contexts', 'dockerfile', 'args', 'labels', 'tags', 'cache-from', 'secret', 'platforms', 'output', 'pull'])
    expect(api.output).toEqual([{ dest: 'out/api.tar', type: 'oci' }])
    expect(api['cache-from']).toEqual([{ ref: 'registry.example/cache', type: 'registry' }])
    expect(Object.keys(api.args as object)).toEqual(['BUILD_MODE', 'NODE_VERSION'])
    expect(doc.target.deps!.output).toEqual([{ type: 'cacheonly' }])
    expect(out.startsWith('{\n  "group": {')).toBe(true)
  })

  it('gives the same bytes whatever the order of the file’s keys, and escapes templates so the print reads back', () => {
    const a = bake({ target: { t: { tags: ['x'], args: { B: '2', A: 'lit$${X}' } }, s: {} } })
    const b = bake({ target: { s: {}, t: { args: { A: 'lit$${X}', B: '2' }, tags: ['x'] } } })
    const out = bakePrintJson(resolveBake(a, ['t', 's']))
    expect(bakePrintJson(resolveBake(b, ['s', 't']))).toBe(out)
    const doc = JSON.parse(out) as { target: Record<string, unknown> }
    expect((doc.target.t as { args: Record<string, string> }).args.A).toBe('lit$${X}')
    const again = resolveBake(parseBakeFiles([{ name: 'printed.json', text: JSON.stringify({ target: doc.target }) }]), ['t'])
    expect(again.targets.t!.args.A).toBe('lit${X}')
  })
})
