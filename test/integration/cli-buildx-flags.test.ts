/**
 * buildx's build flags through the CLI, each seen where it lands: --add-host in a RUN's /etc/hosts,
 * --ulimit in its `ulimit -n`, --shm-size in its `df /dev/shm` (real runc), --label in the config,
 * --iidfile holding the config digest (the image ID, as buildx writes it).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyboxArchive, cleanupTmpDirs, tmpDir } from '../helpers/testbed.js'
import { requireTools } from '../helpers/tools.js'
import { canBuildRootless } from '../helpers/rootless-env.js'

const bed = requireTools(['runc'], { needsRoot: !canBuildRootless() })
const root = resolve(__dirname, '../..')
const bin = join(root, 'bin', 'imagesmith.js')
const api = join(root, 'src', 'index.ts')

let work: string
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') }, timeout: 300_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(async () => {
  work = await tmpDir('ism-buildx-flags-')
})
afterAll(() => cleanupTmpDirs())

describe.skipIf(bed.skip)('buildx flags', () => {
  it('--add-host, --ulimit, --shm-size reach RUN; --label the config; --iidfile the image ID', () => {
    const s = join(work, 'build.ts')
    writeFileSync(s, `import { image } from ${JSON.stringify(api)}
export default image().from('oci-archive:${busyboxArchive()}')
  .run('grep -w db.example /etc/hosts; echo nofile=$(ulimit -n); df -k /dev/shm | tail -1')
`)
    const out = join(work, 'layout')
    const iid = join(work, 'iid', 'image.id')
    const r = cli(['build', s, '--context', work, '--progress', 'plain', '-o', `type=oci-layout,dest=${out}`,
      '--add-host', 'db.example:10.1.2.3', '--add-host', 'v6.example=fd00::1', '--ulimit', 'nofile=1234:2345', '--shm-size', '96m',
      '--label', 'org.example.team=build', '--label', 'empty', '--iidfile', iid])
    expect(r.stderr).not.toContain('error')
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/10\.1\.2\.3\s+db\.example/)
    expect(r.stderr).toContain('nofile=1234')
    // df -k: 96m = 98304 1k-blocks
    expect(r.stderr).toMatch(/shm\s+98304\s/)
    const [img] = JSON.parse(cli(['inspect', out, '--json']).stdout)
    expect(img.config.config.Labels).toEqual({ 'org.example.team': 'build', empty: '' })
    expect(readFileSync(iid, 'utf8')).toBe(img.manifest.config.digest)

    // Bad values are usage errors, before anything runs.
    for (const bad of [['--add-host', 'nohost'], ['--ulimit', 'nofile=9:1'], ['--shm-size', 'lots'], ['--add-host', 'h:host-gateway']]) {
      const b = cli(['build', s, '--context', work, ...bad])
      expect(b.code, bad.join(' ')).toBe(2)
      expect(b.stderr, bad.join(' ')).toContain(`error: ${bad[0]}: invalid`)
    }
  })
})
