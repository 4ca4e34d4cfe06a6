/**
 * `imagesmith login` / `logout` and authenticated pushes against a real docker-registry with
 * htpasswd basic auth and with token auth (the test's own token server): credentials verified
 * before they are stored, stored as `docker login` stores them (config.json `auths`, or the
 * configured credsStore through a `docker-credential-test` program), and never echoed.
 */
import { chmodSync, statSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { image, isImagesmithError } from '../../src/index.js'
import { main } from '../../src/cli/main.js'
import { cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools, runTool } from '../helpers/tools.js'
import { filesContaining, seedBases, startTestRegistry, type TestRegistry } from '../helpers/registry.js'

const bed = requireTools(['docker-registry', 'skopeo', 'htpasswd', 'openssl'])

const HELPER = `#!/usr/bin/env node
// docker-credential-test: the credential-helper protocol over a JSON file in $CRED_TEST_DIR.
const fs = require('fs'), path = require('path')
const file = path.join(process.env.CRED_TEST_DIR, 'store.json')
const read = () => { try { return JSON.parse(fs.readFileSync(file, 'utf8')) } catch { return {} } }
let input = ''
process.stdin.on('data', (d) => (input += d)).on('end', () => {
  const db = read(), action = process.argv[2]
  fs.appendFileSync(path.join(process.env.CRED_TEST_DIR, 'calls.log'), action + ' ' + (action === 'store' ? JSON.parse(input).ServerURL : input.trim()) + '\\n')
  if (action === 'store') { const c = JSON.parse(input); db[c.ServerURL] = { Username: c.Username, Secret: c.Secret } }
  else if (action === 'erase') { if (!db[input.trim()]) { console.log('credentials not found in native keychain'); process.exit(1) } delete db[input.trim()] }
  else if (action === 'get') { const c = db[input.trim()]; if (!c) { console.log('credentials not found in native keychain'); process.exit(1) } process.stdout.write(JSON.stringify({ ServerURL: input.trim(), ...c })); return }
  fs.writeFileSync(file, JSON.stringify(db))
})
`

interface Cli {
  code: number
  out: string
  err: string
}

async function cli(argv: string[], stdin?: string): Promise<Cli> {
  let out = ''
  let err = ''
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s), ...(stdin !== undefined ? { stdin: Readable.from([stdin]) } : {}) }
  const code = await main(argv, io)
  return { code, out, err }
}

describe.skipIf(bed.skip)('login, logout and authenticated pushes', () => {
  let work: string
  let context: string
  const saved: Record<string, string | undefined> = {}

  beforeAll(async () => {
    work = await tmpDir('ism-login-')
    context = join(work, 'ctx')
    await mkdir(context, { recursive: true })
    await writeFile(join(context, 'f.txt'), 'authenticated push\n')
    const bin = join(work, 'bin')
    await mkdir(bin)
    await writeFile(join(bin, 'docker-credential-test'), HELPER)
    chmodSync(join(bin, 'docker-credential-test'), 0o755)
    for (const k of ['PATH', 'DOCKER_CONFIG', 'CRED_TEST_DIR']) saved[k] = process.env[k]
    process.env['PATH'] = `${bin}:${process.env['PATH']}`
    process.env['CRED_TEST_DIR'] = work
  }, 60_000)

  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    await cleanupTmpDirs()
  })

  const useConfig = async (name: string, initial?: object): Promise<string> => {
    const dir = join(work, name)
    await mkdir(dir, { recursive: true })
    if (initial) await writeFile(join(dir, 'config.json'), JSON.stringify(initial))
    process.env['DOCKER_CONFIG'] = dir
    return dir
  }

  describe('htpasswd basic auth', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startTestRegistry({ auth: 'basic' })
    }, 60_000)
    afterAll(async () => reg?.stop(), 30_000)

    it('a wrong password is UNAUTHORIZED, names no secret, and writes nothing', async () => {
      const dir = await useConfig('basic-wrong', { psFormat: 'table {{.ID}}' })
      const before = await readFile(join(dir, 'config.json'), 'utf8')
      const r = await cli(['login', reg.host, '-u', reg.auth!.username, '--password-stdin'], 'not-the-password-987\n')
      expect(r.code).toBe(1)
      expect(r.err).toMatch(/^error \[UNAUTHORIZED\]: login to 127\.0\.0\.1:\d+ failed/)
      expect(r.err + r.out).not.toContain('not-the-password-987')
      expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(before)
    }, 60_000)

    it('login stores base64 user:pass in auths (0600, other keys kept); a push then authenticates from config.json; logout removes it', async () => {
      const dir = await useConfig('basic-ok', { psFormat: 'table {{.ID}}', auths: { 'other.example:5000': { auth: 'b3RoZXI6cGFzcw==' } } })
      const r = await cli(['login', reg.host, '-u', reg.auth!.username, '--password-stdin'], `${reg.auth!.password}\n`)
      expect(r.err).toBe('')
      expect(r.out).toBe('Login Succeeded\n')
      const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { psFormat: string; auths: Record<string, { auth: string }> }
      expect(cfg.psFormat).toBe('table {{.ID}}')
      expect(cfg.auths['other.example:5000']).toEqual({ auth: 'b3RoZXI6cGFzcw==' })
      expect(cfg.auths[reg.host]).toEqual({ auth: Buffer.from(`${reg.auth!.username}:${reg.auth!.password}`).toString('base64') })
      expect(statSync(join(dir, 'config.json')).mode & 0o777).toBe(0o600)

      const built = await image()
        .from('scratch')
        .copy('f.txt', '/f.txt')
        .build({ context, cacheDir: join(work, 'cache'), tags: [`${reg.host}/team/basic:1`], output: { type: 'registry' }, registry: { configDir: dir } })
      const inspect = await runTool('skopeo', ['inspect', '--tls-verify=false', '--creds', `${reg.auth!.username}:${reg.auth!.password}`, `docker://${reg.host}/team/basic:1`])
      expect((JSON.parse(inspect.stdout) as { Digest: string }).Digest).toBe(built.digest)

      const out = await cli(['logout', reg.host])
      expect(out.out).toBe(`Removing login credentials for ${reg.host}\n`)
      const after = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { psFormat: string; auths: Record<string, unknown> }
      expect(after).toEqual({ psFormat: 'table {{.ID}}', auths: { 'other.example:5000': { auth: 'b3RoZXI6cGFzcw==' } } })
    }, 120_000)

    it('-p works with a warning, as docker login', async () => {
      await useConfig('basic-p')
      const r = await cli(['login', reg.host, '-u', reg.auth!.username, '-p', reg.auth!.password])
      expect(r.code).toBe(0)
      expect(r.err).toContain('WARNING! Using --password via the CLI is insecure')
    }, 60_000)

    it('a push with a wrong password is UNAUTHORIZED without the password anywhere', async () => {
      const dir = await useConfig('basic-push-wrong')
      const wrong = 'wrong-secret-password-4242'
      const err = await image()
        .from('scratch')
        .copy('f.txt', '/f.txt')
        .build({ context, cacheDir: join(work, 'cache'), tags: [`${reg.host}/team/denied:1`], output: { type: 'registry' }, registry: { configDir: dir, auths: { [reg.host]: { username: reg.auth!.username, password: wrong } } } })
        .then(() => undefined, (e: unknown) => e)
      expect(isImagesmithError(err)).toBe(true)
      expect((err as { code: string }).code).toBe('UNAUTHORIZED')
      const text = `${(err as Error).message} ${JSON.stringify((err as { details: unknown }).details)} ${(err as Error).stack}`
      expect(text).not.toContain(wrong)
      expect(text).not.toContain(Buffer.from(`${reg.auth!.username}:${wrong}`).toString('base64'))
      expect(await filesContaining(join(work, 'cache'), wrong)).toEqual([])
    }, 60_000)
  })

  describe('token auth', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startTestRegistry({ auth: 'token' })
      await seedBases(reg)
    }, 120_000)
    afterAll(async () => reg?.stop(), 30_000)

    it('login gets a token for the credentials; a wrong password is UNAUTHORIZED', async () => {
      await useConfig('token-login')
      const bad = await cli(['login', reg.host, '-u', reg.auth!.username, '--password-stdin'], 'nope-nope-nope\n')
      expect(bad.code).toBe(1)
      expect(bad.err).toContain('error [UNAUTHORIZED]')
      expect(bad.err).not.toContain('nope-nope-nope')
      const ok = await cli(['login', reg.host, '-u', reg.auth!.username, '--password-stdin'], `${reg.auth!.password}\n`)
      expect(ok.out).toBe('Login Succeeded\n')
      expect(reg.token!.requests.some((q) => q.account === reg.auth!.username && q.granted)).toBe(true)
    }, 60_000)

    it('pushes with a push,pull token, mounting the base layer with a pull token on its repository', async () => {
      const dir = await useConfig('token-push')
      expect((await cli(['login', reg.host, '-u', reg.auth!.username, '--password-stdin'], `${reg.auth!.password}\n`)).code).toBe(0)
      const r = await image()
        .from(`${reg.host}/library/busybox`)
        .copy('f.txt', '/f.txt')
        .build({ context, cacheDir: join(work, 'cache'), tags: [`${reg.host}/team/tok:1`], output: { type: 'registry' }, registry: { configDir: dir } })
      expect(r.pushed).toMatchObject({ mounted: 1, blobs: 2 })
      const scopes = reg.token!.requests.filter((q) => q.granted && q.account).flatMap((q) => q.scopes)
      expect(scopes).toContain('repository:team/tok:pull,push')
      expect(scopes).toContain('repository:library/busybox:pull')
      const inspect = await runTool('skopeo', ['inspect', '--tls-verify=false', '--creds', `${reg.auth!.username}:${reg.auth!.password}`, `docker://${reg.host}/team/tok:1`])
      expect((JSON.parse(inspect.stdout) as { Digest: string }).Digest).toBe(r.digest)
    }, 120_000)

    it('a push with a wrong password is UNAUTHORIZED and names no secret', async () => {
      const dir = await useConfig('token-wrong')
      const wrong = 'token-wrong-password-777'
      const err = await image()
        .from('scratch')
        .copy('f.txt', '/f.txt')
        .build({ context, cacheDir: join(work, 'cache'), tags: [`${reg.host}/team/denied:1`], output: { type: 'registry' }, registry: { configDir: dir, auths: { [reg.host]: { username: reg.auth!.username, password: wrong } } } })
        .then(() => undefined, (e: unknown) => e)
      expect((err as { code: string }).code).toBe('UNAUTHORIZED')
      expect(`${(err as Error).message} ${JSON.stringify((err as { details: unknown }).details)}`).not.toContain(wrong)
    }, 60_000)
  })

  describe('credsStore', () => {
    let reg: TestRegistry
    beforeAll(async () => {
      reg = await startTestRegistry({ auth: 'basic' })
    }, 60_000)
    afterAll(async () => reg?.stop(), 30_000)

    it('login stores through docker-credential-<credsStore>, config.json keeps an empty entry; pushes read it back; logout erases', async () => {
      const dir = await useConfig('store', { credsStore: 'test', detachKeys: 'ctrl-x' })
      const r = await cli(['login', reg.host, '-u', reg.auth!.username, '--password-stdin'], `${reg.auth!.password}\n`)
      expect(r.out).toBe('Login Succeeded (stored in docker-credential-test)\n')
      const store = JSON.parse(await readFile(join(work, 'store.json'), 'utf8')) as Record<string, unknown>
      expect(store[reg.host]).toEqual({ Username: reg.auth!.username, Secret: reg.auth!.password })
      const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
      expect(cfg).toEqual({ credsStore: 'test', detachKeys: 'ctrl-x', auths: { [reg.host]: {} } })
      expect(await filesContaining(dir, reg.auth!.password)).toEqual([])

      const built = await image()
        .from('scratch')
        .copy('f.txt', '/f.txt')
        .build({ context, cacheDir: join(work, 'cache'), tags: [`${reg.host}/team/helper:1`], output: { type: 'registry' }, registry: { configDir: dir } })
      expect(built.pushed?.tags).toEqual([`${reg.host}/team/helper:1`])

      expect((await cli(['logout', reg.host])).code).toBe(0)
      expect(JSON.parse(await readFile(join(work, 'store.json'), 'utf8'))).toEqual({})
      expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))).toEqual({ credsStore: 'test', detachKeys: 'ctrl-x', auths: {} })
      expect(await readFile(join(work, 'calls.log'), 'utf8')).toMatch(new RegExp(`store ${reg.host}\\n(get ${reg.host}\\n)+erase ${reg.host}\\n`.replace(/\./g, '\\.')))
    }, 120_000)
  })
})
