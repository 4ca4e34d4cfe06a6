import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseBakeFiles, resolveBake } from '../../src/bake/index.js'
import { ErrorCodes, ImagesmithError } from '../../src/errors.js'
import { thrown } from '../helpers/thrown.js'

const fixture = join(__dirname, '../fixtures/bake/docker-bake.json')
const fixtureFile = { name: fixture, text: readFileSync(fixture, 'utf8') }

const file = (doc: unknown, name = 'docker-bake.json') => ({ name, text: JSON.stringify(doc) })

describe('bake files: variables', () => {
  it('expands ${VAR} from variable defaults', () => {
    const plan = resolveBake(parseBakeFiles([fixtureFile]), ['api'])
    expect(plan.targets.api!.tags).toEqual(['registry.example/api:dev'])
    expect(plan.targets.api!.cacheFrom).toEqual([{ type: 'registry', ref: 'registry.example/cache' }])
  })

  it('lets the environment override a default, typed like the default', () => {
    const config = parseBakeFiles([fixtureFile], { env: { TAG: '1.2.3', PUSH_CACHE: 'true', HOME: '/root' } })
    expect(config.variables.TAG).toBe('1.2.3')
    expect(config.variables.PUSH_CACHE).toBe(true)
    const plan = resolveBake(config, ['web'])
    expect(plan.targets.web!.tags).toEqual(['registry.example/web:1.2.3'])
    expect(plan.targets.web!.noCache).toBe(true)
    const e = thrown(() => parseBakeFiles([fixtureFile], { env: { PUSH_CACHE: 'maybe' } }))
    expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
    expect(e.details.variable).toBe('PUSH_CACHE')
  })

  it('reads defaults that refer to other variables, and refuses a variable defined through itself', () => {
    const c = parseBakeFiles([file({ variable: { A: { default: 'x-${B}' }, B: { default: 'b' } }, target: { t: { tags: ['${A}'] } } })], { env: { B: 'env' } })
    expect(resolveBake(c, ['t']).targets.t!.tags).toEqual(['x-env'])
    const e = thrown(() => parseBakeFiles([file({ variable: { A: { default: '${B}' }, B: { default: '${A}' } } })]))
    expect(e.code).toBe(ErrorCodes.BAKE_CYCLE)
    expect(e.details.cycle).toEqual(['A', 'B', 'A'])
  })

  it('takes no undeclared variable from the environment, as buildx', () => {
    const e = thrown(() => parseBakeFiles([file({ target: { t: { tags: ['${NOPE}'] } } })], { env: { NOPE: 'set' } }))
    expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
    expect(e.details).toMatchObject({ file: 'docker-bake.json', target: 't', key: 'tags', variable: 'NOPE' })
  })

  it('keeps $${ and %%{ as literal text and refuses expressions it cannot evaluate', () => {
    const c = parseBakeFiles([file({ target: { t: { args: { A: 'a$${B}c', P: '100%%{x}' } } } })])
    expect(resolveBake(c, ['t']).targets.t!.args).toEqual({ A: 'a${B}c', P: '100%{x}' })
    for (const bad of ['${upper(X)}', '${X + 1}', '%{ if true }x%{ endif }', '${']) {
      const e = thrown(() => parseBakeFiles([file({ variable: { X: { default: 'x' } }, target: { t: { args: { A: bad } } } })]))
      expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
      expect(e.details.key).toBe('args.A')
    }
  })

  it('bounds defaults that double at each level', () => {
    const variable: Record<string, { default: string }> = { V0: { default: 'x'.repeat(1024) } }
    for (let i = 1; i <= 12; i++) variable[`V${i}`] = { default: `\${V${i - 1}}\${V${i - 1}}` }
    const e = thrown(() => parseBakeFiles([file({ variable })]))
    expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
    expect(e.message).toMatch(/longer than/)
  })
})

describe('bake files: keys', () => {
  it('names the key, the file and the target of an unknown target key', () => {
    const e = thrown(() => parseBakeFiles([file({ target: { api: { context: '.', dockerfiel: 'x' } } }, 'repo/docker-bake.json')]))
    expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
    expect(e.details).toMatchObject({ file: 'repo/docker-bake.json', target: 'api', key: 'dockerfiel' })
    expect(e.message).toContain('repo/docker-bake.json')
    expect(e.message).toContain('"api"')
    expect(e.message).toContain('"dockerfiel"')
  })

  it('refuses unknown group keys, unknown top-level blocks and keys not supported yet', () => {
    expect(thrown(() => parseBakeFiles([file({ group: { g: { targets: [], target: [] } } })])).details).toMatchObject({ group: 'g', key: 'target' })
    expect(thrown(() => parseBakeFiles([file({ targets: { a: {} } })])).details).toMatchObject({ key: 'targets' })
    expect(thrown(() => parseBakeFiles([file({ target: { a: { matrix: { x: ['1'] } } } })])).details).toMatchObject({ target: 'a', key: 'matrix' })
    expect(thrown(() => parseBakeFiles([file({ variable: { V: { type: 'string' } } })])).details).toMatchObject({ variable: 'V', key: 'type' })
    expect(thrown(() => parseBakeFiles([file({ target: { a: { tags: 'not-a-list' } } })])).details).toMatchObject({ target: 'a', key: 'tags' })
    expect(thrown(() => parseBakeFiles([file({ target: { 'a.b': {} } })])).details).toMatchObject({ target: 'a.b' })
  })

  it('refuses HCL files and says only JSON is read', () => {
    const e = thrown(() => parseBakeFiles([{ name: 'docker-bake.hcl', text: 'target "a" {}' }]))
    expect(e.code).toBe(ErrorCodes.BAKE_FILE_INVALID)
    expect(e.details.file).toBe('docker-bake.hcl')
    expect(e.message).toMatch(/HCL bake files are not supported, only JSON/)
    const notJson = thrown(() => parseBakeFiles([{ name: 'bake.txt', text: 'target "a" {}' }]))
    expect(notJson.message).toMatch(/not valid JSON/)
  })

  it('reads every kept key: outputs, cache, secrets, ssh, contexts, labels, network, annotations', () => {
    const plan = resolveBake(parseBakeFiles([fixtureFile]), ['all'])
    const api = plan.targets.api!
    expect(api.outputs).toEqual([{ type: 'oci', dest: 'out/api.tar' }])
    expect(api.secrets).toEqual([{ id: 'npmrc', src: '.npmrc' }])
    expect(api.contexts).toEqual({ deps: 'target:deps' })
    expect(api.labels).toEqual({ 'org.opencontainers.image.source': 'https://example.invalid/monorepo' })
    expect(api.pull).toBe(true)
    expect(plan.targets.web!.cacheTo).toEqual([{ type: 'inline' }])
    expect(plan.targets.worker!.ssh).toEqual([{ id: 'default', paths: [] }])
    expect(plan.targets.worker!.network).toBe('none')
    expect(plan.targets.tools!.annotations).toEqual(['index:org.opencontainers.image.title=tools'])
    expect(Object.isFrozen(api) && Object.isFrozen(api.tags) && Object.isFrozen(api.args)).toBe(true)
  })

  it('merges a later file over an earlier one, key by key', () => {
    const c = parseBakeFiles([file({ target: { a: { tags: ['one'], args: { X: '1', Y: '1' } } } }), file({ target: { a: { tags: ['two'], args: { Y: '2' } } } }, 'docker-bake.override.json')])
    const a = resolveBake(c, ['a']).targets.a!
    expect(a.tags).toEqual(['two'])
    expect(a.args).toEqual({ X: '1', Y: '2' })
  })
})
