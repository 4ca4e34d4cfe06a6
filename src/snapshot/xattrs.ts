/**
 * Extended attributes of a tree, read with one `getfattr -R` call (Node has no xattr API, and one
 * process for the whole tree costs less than one per file).
 */
import { execFile, spawn } from 'node:child_process'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { nameBytes, nameFromBytes } from '../util/names.js'

/** Extended attributes a layer keeps (overlay's own `trusted.overlay.*`, or `user.overlay.*` under `userxattr`, never). */
export const KEEP_XATTR = /^(security\.capability|user\.(?!overlay\.).+)$/

/**
 * Reads the kept xattrs (and overlay's opaque marker) of every path under `root` with ONE
 * `getfattr -R` call. Keys of the result are paths relative to `root`.
 */
export function readXattrs(root: string): Promise<Map<string, Record<string, Buffer>>> {
  return new Promise((resolve, reject) => {
    execFile(
      'getfattr',
      ['-R', '-P', '-h', '-d', '-m', '^(security\\.capability|user\\..*|trusted\\.overlay\\.opaque|trusted\\.imagesmith\\..*)$', '-e', 'hex', '--absolute-names', root],
      { encoding: 'buffer', maxBuffer: 256 << 20 },
      (err, stdout, stderr) => {
        // getfattr exits 1 when some file has none of the attributes it was asked for; output is still complete.
        if (err && (err as { code?: unknown }).code !== 1) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(new Map()) // attr not installed: no xattrs kept
          return reject(new ImagesmithError(ErrorCodes.SNAPSHOT_FAILED, `getfattr failed reading the xattrs under ${root}: ${stderr.toString().trim() || err.message}`, { path: root, command: 'getfattr' }, { cause: err }))
        }
        resolve(parseGetfattr(stdout, root))
      },
    )
  })
}

/** getfattr escapes special bytes as `\ooo`; the name is bytes, mapped as every walk maps it. */
function unescapeName(s: string): string {
  const latin1 = s.replace(/\\(\\|[0-7]{3})/g, (_m, g: string) => (g === '\\' ? '\\' : String.fromCharCode(parseInt(g, 8))))
  return nameFromBytes(Buffer.from(latin1, 'latin1'))
}

export function parseGetfattr(out: Buffer, root: string): Map<string, Record<string, Buffer>> {
  const map = new Map<string, Record<string, Buffer>>()
  const prefix = root.endsWith('/') ? root : `${root}/`
  let current: Record<string, Buffer> | undefined
  for (const line of out.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unescapeName(line.slice(8))
      const rel = abs === root ? '' : abs.startsWith(prefix) ? abs.slice(prefix.length) : abs
      current = {}
      map.set(rel, current)
    } else if (current && line.length > 0) {
      const eq = line.indexOf('=')
      if (eq < 0) continue
      const name = line.slice(0, eq)
      const v = line.slice(eq + 1)
      current[name] = v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : Buffer.from(v.replace(/^"|"$/g, ''), 'latin1')
    }
  }
  return map
}

/**
 * Sets `name=value` on each path (string form of names.ts) with ONE `setfattr --restore` reading a
 * getfattr-style dump from stdin, names escaped as `\ooo` so any byte gets through.
 */
export function writeXattrs(items: Iterable<readonly [path: string, name: string, value: Buffer]>): Promise<void> {
  const dump: Buffer[] = []
  for (const [path, name, value] of items) {
    dump.push(Buffer.from(`# file: ${escapeName(nameBytes(path))}\n${name}=0x${value.toString('hex')}\n\n`, 'latin1'))
  }
  return new Promise((resolve, reject) => {
    const child = spawn('setfattr', ['--restore=-'], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString() })
    const failed = (why: string, cause?: unknown) =>
      new ImagesmithError(ErrorCodes.SNAPSHOT_FAILED, `setfattr --restore failed (${why}): ${stderr.trim()}`, { command: 'setfattr' }, { cause })
    child.on('error', (e) => reject(failed(e.message, e)))
    child.on('close', (code) => (code === 0 ? resolve() : reject(failed(String(code)))))
    child.stdin.on('error', () => undefined) // reported through 'close'
    child.stdin.end(Buffer.concat(dump))
  })
}

/** getfattr's quoting: bytes other than plain printable ASCII as `\ooo`. */
function escapeName(b: Buffer): string {
  let out = ''
  for (const c of b) out += c > 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\${c.toString(8).padStart(3, '0')}`
  return out
}
