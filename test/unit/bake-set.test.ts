import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseBakeFiles, parseSets, resolveBake } from '../../src/bake/index.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { thrown } from '../helpers/thrown.js'

const fixture = join(__dirname, '../fixtures/bake/docker-bake.json')
const config = () => parseBakeFiles([{ name: fixture, text: readFileSync(fixture, 'utf8') }])
const bake = (doc: unknown) => parseBakeFiles([{ name: 'docker-bake.json', text: JSON.stringify(doc) }])

describe('bake --set', () => {
  it('replaces a list with =, appends with +=, and collects repeated sets', () => {
    const c = config()
    expect(resolveBake(c, ['api'], { set: ['api.tags=a:1'] }).targets.api!.tags).toEqual(['a:1'])
    expect(resolveBake(c, ['api'], { set: ['api.tags+=a:1'] }).targets.api!.tags).toEqual(['registry.example/api:dev', 'a:1'])
    expect(resolveBake(c, ['api'], { set: ['api.tags=a:1', 'api.tags=a:2'] }).targets.api!.tags).toEqual(['a:1', 'a:2'])
    expect(resolveBake(c, ['api'], { set: ['api.platform=linux/riscv64'] }).targets.api!.platforms).toEqual(['linux/riscv64'])
  })

  it('sets one arg, label or context by name and leaves the others', () => {
    const api = resolveBake(config(), ['api'], { set: ['api.args.BUILD_MODE=debug', 'api.labels.team=core', 'api.contexts.extra=./extra'] }).targets.api!
    expect(api.args).toEqual({ NODE_VERSION: '20', BUILD_MODE: 'debug' })
    expect(api.labels.team).toBe('core')
    expect(api.contexts).toEqual({ deps: 'target:deps', extra: './extra' })
  })

  it('takes args.NAME with no value from the environment, and skips it when unset', () => {
    const c = config()
    expect(resolveBake(c, ['api'], { set: ['api.args.NODE_VERSION'], env: { NODE_VERSION: '22' } }).targets.api!.args.NODE_VERSION).toBe('22')
    expect(resolveBake(c, ['api'], { set: ['api.args.NODE_VERSION'], env: {} }).targets.api!.args.NODE_VERSION).toBe('20')
  })

  it('sets scalars and parses outputs, caches and booleans', () => {
    const api = resolveBake(config(), ['api'], {
      set: ['api.context=elsewhere', 'api.dockerfile=Alt.Dockerfile', 'api.target=prod', 'api.no-cache=1', 'api.pull=false', 'api.output=type=oci-layout,dest=out/api', 'api.cache-from=ghcr.io/x/cache', 'api.cache-to=type=local,dest=/tmp/c'],
    }).targets.api!
    expect(api).toMatchObject({ context: 'elsewhere', dockerfile: 'Alt.Dockerfile', target: 'prod', noCache: true, pull: false })
    expect(api.outputs).toEqual([{ type: 'oci-layout', dest: 'out/api' }])
    expect(api.cacheFrom).toEqual([{ type: 'registry', ref: 'ghcr.io/x/cache' }])
    expect(api.cacheTo).toEqual([{ type: 'local', dest: '/tmp/c' }])
  })

  it('applies * to every target, and {target} becomes each target’s name', () => {
    const plan = resolveBake(config(), ['services'], { set: ['*.tags=registry.example/{target}:1.2', '*.platform=linux/amd64'] })
    expect(plan.targets.api!.tags).toEqual(['registry.example/api:1.2'])
    expect(plan.targets.web!.tags).toEqual(['registry.example/web:1.2'])
    expect(plan.targets.worker!.tags).toEqual(['registry.example/worker:1.2'])
    expect(plan.targets.deps!.tags).toEqual(['registry.example/deps:1.2'])
    for (const t of Object.values(plan.targets)) expect(t.platforms).toEqual(['linux/amd64'])
  })

  it('applies a parent’s set before its child’s keys and sets (buildx TestNestedInheritsWithGroup)', () => {
    const c = bake({ target: { gp: { args: { BAR: 'fuu' } }, p: { inherits: ['gp'], args: { FOO: 'bar' } }, c1: { inherits: ['p'] }, c2: { inherits: ['p'], args: { FOO2: 'bar2' } } } })
    const plan = resolveBake(c, ['c1', 'c2'], { set: ['gp.args.BAR=fii', 'c2.args.FOO=baaar'] })
    expect(plan.targets.c1!.args).toEqual({ BAR: 'fii', FOO: 'bar' })
    expect(plan.targets.c2!.args).toEqual({ BAR: 'fii', FOO: 'baaar', FOO2: 'bar2' })
  })

  it('overrides a declared secret by id and refuses an undeclared one', () => {
    expect(resolveBake(config(), ['api'], { set: ['api.secret.npmrc=env=NPMRC'] }).targets.api!.secrets).toEqual([{ id: 'npmrc', env: 'NPMRC' }])
    expect(thrown(() => resolveBake(config(), ['api'], { set: ['api.secret.other=src=x'] })).code).toBe(ErrorCodes.BAKE_SET_INVALID)
  })

  it('turns push and load into outputs as buildx does', () => {
    const c = bake({ target: { a: {}, b: { output: ['type=image,name=x'] } } })
    const plan = resolveBake(c, ['a', 'b'], { set: ['*.push=true'] })
    expect(plan.targets.a!.outputs).toEqual([{ type: 'image', push: 'true' }])
    expect(plan.targets.b!.outputs).toEqual([{ type: 'image', name: 'x', push: 'true' }])
    expect(resolveBake(c, ['a'], { set: ['a.load=true'] }).targets.a!.outputs).toEqual([{ type: 'docker' }])
  })

  it('refuses malformed sets and unknown keys with a typed error naming them', () => {
    const cases: Array<[string, string | undefined]> = [
      ['tags=x', undefined],
      ['api.nope=1', 'nope'],
      ['api.tags', 'tags'],
      ['api.args=1', 'args'],
      ['api.tags.x=1', 'tags'],
      ['api.context+=x', 'context'],
      ['api.resources.memory=1g', 'resources'],
    ]
    for (const [set, key] of cases) {
      const e = thrown(() => parseSets([set]))
      expect(e.code).toBe(ErrorCodes.BAKE_SET_INVALID)
      expect(e.details.set).toBe(set)
      if (key) expect(e.details.key).toBe(key)
    }
    expect(thrown(() => resolveBake(config(), ['api'], { set: ['api.no-cache=perhaps'] })).code).toBe(ErrorCodes.BAKE_SET_INVALID)
    expect(thrown(() => resolveBake(config(), ['api'], { set: ['api.output=type=oci,dest'] })).code).toBe(ErrorCodes.BAKE_SET_INVALID)
  })

  it('refuses a set whose pattern matches no target, listing the targets', () => {
    const e = thrown(() => resolveBake(config(), ['api'], { set: ['nope.tags=x'] }))
    expect(e.code).toBe(ErrorCodes.TARGET_NOT_FOUND)
    expect(e.details.targets).toContain('api')
  })
})
