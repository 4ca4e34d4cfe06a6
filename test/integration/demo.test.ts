/**
 * `npm run demo` (scripts/demo.sh) as users run it. Missing prerequisites are made real, not mocked:
 * the test hides a program by bind-mounting /dev/null over it in a private mount namespace
 * (`unshare -m`), and fakes "not Debian" by bind-mounting another /etc/os-release. Needs root.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../..')
const isRoot = process.getuid?.() === 0
const hasUnshare = spawnSync('unshare', ['--version']).status === 0

let work: string

/** Every executable `name` the demo could find (PATH plus the sbin dirs), symlinks resolved. */
function installed(name: string): string[] {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']
  const found = new Set<string>()
  for (const d of dirs) {
    const p = join(d, name)
    try {
      if (lstatSync(p)) found.add(realpathSync(p))
    } catch {
      // not there
    }
  }
  return [...found]
}

/** Runs `bash demo.sh args` in a private mount namespace after `setup` (shell lines), optionally as nobody. */
function demo(script: string, args: string[], setup: string[], asNobody = false) {
  const cmd = [...setup, `${asNobody ? 'setpriv --reuid=65534 --regid=65534 --clear-groups ' : ''}bash ${script} ${args.join(' ')}`].join(' && ')
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', cmd], {
    encoding: 'utf8',
    env: { ...process.env, IMAGESMITH_CACHE: join(work, 'cache') },
    timeout: 300_000,
  })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

const hide = (paths: string[]) => paths.map((p) => `mount --bind /dev/null ${p}`)

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ism-demo-'))
  chmodSync(work, 0o755) // the non-root case runs the script as nobody
  // A copy of the checkout the demo runs in: it writes out/ next to its scripts.
  const repo = join(work, 'repo')
  mkdirSync(repo)
  for (const f of ['scripts', 'examples', 'bin', 'src', 'package.json', 'tsconfig.json']) cpSync(join(root, f), join(repo, f), { recursive: true })
  symlinkSync(join(root, 'node_modules'), join(repo, 'node_modules'))
  writeFileSync(join(work, 'os-release'), 'ID=fedora\nNAME="Fedora Linux"\n')
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe.skipIf(!isRoot || !hasUnshare)('npm run demo (scripts/demo.sh)', () => {
  const script = () => join(work, 'repo', 'scripts', 'demo.sh')

  it('as root without runc on a system it cannot install on: names runc and how to install it, builds nothing, exits 3', () => {
    const runc = installed('runc')
    const r = demo(script(), [], [...hide(runc), `mount --bind ${join(work, 'os-release')} /etc/os-release`])
    expect(r.out).toContain('runc: the OCI runtime for the RUN step')
    expect(r.out).toContain('apt-get install -y runc')
    expect(r.out).toContain('not a Debian system')
    expect(r.out).not.toContain('#1 FROM')
    expect(r.code).toBe(3)
    expect(existsSync(join(work, 'repo', 'out'))).toBe(false)
  })

  it('--check as root on Debian reports a missing runc and getfattr and changes nothing', () => {
    const r = demo(script(), ['--check'], hide([...installed('runc'), ...installed('getfattr')]))
    expect(r.out).toContain('runc: ')
    expect(r.out).toContain('attr: getfattr')
    expect(r.out).toContain('apt-get install -y runc attr')
    expect(r.code).toBe(3)
  })

  it('not root: a missing static busybox is named with the sudo command; runc is not asked for (the build is COPY-only)', () => {
    // The check runs before the script touches the checkout: a copy readable by nobody is enough.
    const alone = join(work, 'alone', 'scripts')
    mkdirSync(alone, { recursive: true })
    cpSync(script(), join(alone, 'demo.sh'))
    cpSync(join(dirname(script()), 'lib'), join(alone, 'lib'), { recursive: true })
    chmodSync(join(work, 'alone'), 0o755)
    chmodSync(alone, 0o755)
    const r = demo(join(alone, 'demo.sh'), [], [...hide(installed('busybox')), ...hide(installed('runc'))], true)
    expect(r.out).toContain('busybox-static: a static /usr/bin/busybox')
    expect(r.out).toContain('sudo apt-get install -y busybox-static')
    expect(r.out).toContain('not running as root')
    expect(r.out).not.toContain('runc')
    expect(r.code).toBe(3)
  })

  it('with everything there, builds out/hello.tar with its RUN step', () => {
    const r = demo(script(), [], [])
    expect(r.out).toContain('#4 RUN ')
    expect(r.out).toContain('demo: wrote out/hello.tar')
    expect(r.code).toBe(0)
    expect(existsSync(join(work, 'repo', 'out', 'hello.tar'))).toBe(true)
  })
})
