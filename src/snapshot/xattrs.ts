/**
 * Extended attributes of a tree, read with one `getfattr -R` call (Node has no xattr API, and one
 * process for the whole tree costs less than one per file).
 */
import { execFile } from 'node:child_process'
import { ErrorCodes, ImagesmithError } from '../errors.js'

/** Extended attributes a layer keeps (overlay's own `trusted.overlay.*` never). */
export const KEEP_XATTR = /^(security\.capability|user\..+)$/

/**
 * Reads the kept xattrs (and overlay's opaque marker) of every path under `root` with ONE
 * `getfattr -R` call. Keys of the result are paths relative to `root`.
 */
export function readXattrs(root: string): Promise<Map<string, Record<string, Buffer>>> {
  return new Promise((resolve, reject) => {
    execFile(
      'getfattr',
      ['-R', '-P', '-h', '-d', '-m', '^(security\\.capability|user\\..*|trusted\\.overlay\\.opaque)$', '-e', 'hex', '--absolute-names', root],
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

function unescapeName(s: string): string {
  const latin1 = s.replace(/\\(\\|[0-7]{3})/g, (_m, g: string) => (g === '\\' ? '\\' : String.fromCharCode(parseInt(g, 8))))
  return Buffer.from(latin1, 'latin1').toString('utf8')
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
