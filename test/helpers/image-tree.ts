/**
 * An image's filesystem and config in comparable form, whoever built it: the OCI layout is
 * unpacked with umoci (whiteouts applied) and every entry listed with type, mode, owner, size and
 * a content digest (mtimes left out: builders differ in them by design).
 */
import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { runTool } from './tools.js'

export async function layoutTree(layout: string, tag: string, dest: string): Promise<Map<string, string>> {
  await runTool('umoci', ['raw', 'unpack', '--image', `${layout}:${tag}`, dest])
  const out = new Map<string, string>()
  const walk = (rel: string) => {
    const p = join(dest, rel)
    const st = lstatSync(p)
    let what: string
    if (st.isSymbolicLink()) what = `l ${readlinkSync(p)}`
    else if (st.isDirectory()) what = 'd'
    else if (st.isFile()) what = `f ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`
    else what = `o ${st.mode >> 12}`
    if (rel !== '') out.set(rel, `${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`)
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n)
  }
  walk('')
  return out
}

/** The config an OCI layout's tag points at. */
export function layoutConfig(layout: string, tag: string): Record<string, unknown> {
  const blob = (d: string) => JSON.parse(readFileSync(join(layout, 'blobs', ...d.split(':')), 'utf8')) as Record<string, unknown>
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] }
  const m = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag) ?? index.manifests[0]!
  const manifest = blob(m.digest) as { config: { digest: string } }
  return blob(manifest.config.digest)
}
