import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DOCKER_HUB_KEY, credentialKey, eraseCredentials, runCredentialHelper, storeCredentials } from '../../src/registry/config-write.js'
import { loginRegistry } from '../../src/registry/login.js'

const dirs: string[] = []
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), 'ism-cfg-'))
  dirs.push(d)
  return d
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

describe('config.json keys as docker login writes them', () => {
  it('files every name of Docker Hub under https://index.docker.io/v1/, others under host[:port]', () => {
    for (const name of [undefined, '', 'docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/']) expect(credentialKey(name)).toBe(DOCKER_HUB_KEY)
    expect(credentialKey('ghcr.io')).toBe('ghcr.io')
    expect(credentialKey('https://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000')
    expect(loginRegistry(undefined)).toEqual({ key: DOCKER_HUB_KEY, registry: 'docker.io' })
    expect(loginRegistry('localhost:5000')).toEqual({ key: 'localhost:5000', registry: 'localhost:5000' })
  })

  it('creates the directory and a 0600 file whatever the umask; a later login replaces an identity token', async () => {
    const dir = join(fresh(), 'nested', '.docker')
    const old = process.umask(0o022)
    try {
      await storeCredentials(DOCKER_HUB_KEY, 'me', 'pw', { configDir: dir })
    } finally {
      process.umask(old)
    }
    expect(statSync(join(dir, 'config.json')).mode & 0o777).toBe(0o600)
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [DOCKER_HUB_KEY]: { identitytoken: 'tok', email: 'x@y' } } }))
    await storeCredentials(DOCKER_HUB_KEY, 'me', 'pw2', { configDir: dir })
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({ auths: { [DOCKER_HUB_KEY]: { email: 'x@y', auth: Buffer.from('me:pw2').toString('base64') } } })
  })

  it('a credHelpers entry for the registry wins over credsStore', async () => {
    const dir = fresh()
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ credsStore: 'desktop', credHelpers: { 'gcr.io': 'gcloud' } }))
    const calls: string[] = []
    const runHelper = async (program: string, action: string, input: string) => void calls.push(`${program} ${action} ${JSON.parse(input).ServerURL}`)
    expect(await storeCredentials('gcr.io', 'u', 'p', { configDir: dir, runHelper })).toEqual({ helper: 'gcloud' })
    expect(await storeCredentials('quay.io', 'u', 'p', { configDir: dir, runHelper })).toEqual({ helper: 'desktop' })
    expect(calls).toEqual(['docker-credential-gcloud store gcr.io', 'docker-credential-desktop store quay.io'])
  })

  it('logout of a registry never logged in to changes nothing', async () => {
    const dir = fresh()
    writeFileSync(join(dir, 'config.json'), '{"auths":{}}')
    expect(await eraseCredentials('ghcr.io', { configDir: dir })).toBe(false)
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe('{"auths":{}}')
  })

  it('a broken config.json or a failing helper is CREDENTIALS_STORE_FAILED, without the secret', async () => {
    const dir = fresh()
    writeFileSync(join(dir, 'config.json'), '{"auths": {"x": {"auth": "c2VjcmV0"}')
    await expect(storeCredentials('ghcr.io', 'u', 'p', { configDir: dir })).rejects.toMatchObject({ code: 'CREDENTIALS_STORE_FAILED' })
    const err = await runCredentialHelper('sh', 'store', JSON.stringify({ ServerURL: 'h', Username: 'u', Secret: 'hunter2-secret' })).catch((e: Error) => e)
    // `sh store` fails (no such script): the message names the helper, never the payload.
    expect(err).toMatchObject({ code: 'CREDENTIALS_STORE_FAILED', details: { helper: 'sh', action: 'store' } })
    expect((err as Error).message).not.toContain('hunter2-secret')
    await expect(runCredentialHelper('docker-credential-does-not-exist', 'erase', 'h')).rejects.toMatchObject({ code: 'CREDENTIALS_STORE_FAILED' })
  })
})
