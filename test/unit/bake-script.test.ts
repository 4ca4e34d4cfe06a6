import { describe, expect, it } from 'vitest'
import { scriptTargets, selectScriptTargets } from '../../src/bake/index.js'
import { ErrorCodes, ImagesmithError, image } from '../../src/index.js'
import { thrown } from '../helpers/thrown.js'

const api = image().from('scratch').label('svc', 'api')
const web = image().from('scratch').label('svc', 'web')
const worker = image().from('scratch').label('svc', 'worker')

describe('bake: build script targets', () => {
  it('takes a default record, named exports, or a single default builder', () => {
    expect(Object.keys(scriptTargets({ default: { api, web, worker, version: '1' } }, 'build.ts'))).toEqual(['api', 'web', 'worker'])
    expect(scriptTargets({ api, web, helper: () => 1 }, 'build.ts')).toEqual({ api, web })
    expect(scriptTargets({ default: api }, 'build.ts')).toEqual({ default: api })
    expect(scriptTargets({ default: { api }, web }, 'build.ts')).toEqual({ api, web })
    expect(scriptTargets({ default: { default: { api } } }, 'build.ts')).toEqual({ api })
  })

  it('refuses a module without builders, and one name bound to two builders', () => {
    expect(thrown(() => scriptTargets({ default: { n: 1 } }, 'build.ts')).code).toBe(ErrorCodes.BUILD_SCRIPT_INVALID)
    expect(thrown(() => scriptTargets({ default: { api }, api: web }, 'build.ts')).details.target).toBe('api')
  })

  it('selects by name or pattern, every target when none is named, and names the available ones when one is missing', () => {
    const builders = scriptTargets({ default: { api, web, worker } }, 'build.ts')
    expect(selectScriptTargets(builders).map((t) => t.name)).toEqual(['api', 'web', 'worker'])
    expect(selectScriptTargets(builders, ['worker', 'api']).map((t) => [t.name, t.builder])).toEqual([['worker', worker], ['api', api]])
    expect(selectScriptTargets(builders, ['w*']).map((t) => t.name)).toEqual(['web', 'worker'])
    const e = thrown(() => selectScriptTargets(builders, ['db'], { file: 'build.ts' }))
    expect(e.code).toBe(ErrorCodes.TARGET_NOT_FOUND)
    expect(e.details).toMatchObject({ target: 'db', targets: ['api', 'web', 'worker'], path: 'build.ts' })
    expect(e.message).toContain('api, web, worker')
  })

  it('applies the same --set as bake files, {target} included', () => {
    const builders = scriptTargets({ api, web }, 'build.ts')
    const [a, w] = selectScriptTargets(builders, [], { set: ['*.tags=registry.example/{target}:1.2', 'api.args.MODE=prod', 'web.platform=linux/arm64', 'web.output=type=oci,dest=web.tar', 'api.target=release', 'api.no-cache=true'] })
    expect(a!.settings).toMatchObject({ name: 'api', tags: ['registry.example/api:1.2'], args: { MODE: 'prod' }, target: 'release', noCache: true, context: '.' })
    expect(w!.settings).toMatchObject({ tags: ['registry.example/web:1.2'], platforms: ['linux/arm64'], outputs: [{ type: 'oci', dest: 'web.tar' }] })
    expect('dockerfile' in a!.settings).toBe(false)
    expect(Object.isFrozen(a!.settings.tags)).toBe(true)
  })

  it('refuses Dockerfile-only keys for builders', () => {
    const e = thrown(() => selectScriptTargets(scriptTargets({ api }, 'build.ts'), [], { set: ['api.dockerfile=Dockerfile'] }))
    expect(e.code).toBe(ErrorCodes.BAKE_SET_INVALID)
    expect(e.details.key).toBe('dockerfile')
  })

  it('records a target:NAME context as a dependency and pulls it in', () => {
    const builders = scriptTargets({ api, web }, 'build.ts')
    const out = selectScriptTargets(builders, ['web'], { set: ['web.contexts.api=target:api'] })
    expect(out.map((t) => [t.name, t.settings.linked, t.settings.dependsOn])).toEqual([
      ['web', false, ['api']],
      ['api', true, []],
    ])
    expect(out[1]!.settings.outputs).toEqual([{ type: 'cacheonly' }])
    const cyc = thrown(() => selectScriptTargets(builders, ['web'], { set: ['web.contexts.a=target:api', 'api.contexts.w=target:web'] }))
    expect(cyc.code).toBe(ErrorCodes.BAKE_CYCLE)
    expect(thrown(() => selectScriptTargets(builders, ['web'], { set: ['web.contexts.x=target:db'] })).code).toBe(ErrorCodes.TARGET_NOT_FOUND)
  })
})
