/**
 * A small record kept beside each layer the builder writes: every entry's path, type, size and
 * owner (whiteouts included, as their `.wh.` names), so that what a build ships and hides can be
 * weighed (budgets) without reading the layer again, on a cache hit too.
 */
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { Digest } from '../oci/media-types.js'
import { writeFileAtomic } from './atomic-write.js'
import { StoreLayout } from './layout.js'

/** [path, type, size, mode, uid, gid], as the tar writer wrote the entry. */
export type SummaryEntry = readonly [string, string, number, number, number, number]

const VERSION = 1

function summaryPath(storeRoot: string, digest: Digest): string {
  return join(new StoreLayout(storeRoot).dir('layerFiles'), `${String(digest).replace(/^sha256:/, '')}.json`)
}

export async function writeLayerSummary(storeRoot: string, digest: Digest, entries: readonly SummaryEntry[]): Promise<void> {
  await fsp.mkdir(new StoreLayout(storeRoot).dir('layerFiles'), { recursive: true })
  await writeFileAtomic(summaryPath(storeRoot, digest), JSON.stringify({ v: VERSION, entries }))
}

/** The record of layer `digest`, or undefined when the builder did not write that layer (a base image's). */
export async function readLayerSummary(storeRoot: string, digest: Digest): Promise<SummaryEntry[] | undefined> {
  let text: string
  try {
    text = await fsp.readFile(summaryPath(storeRoot, digest), 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  try {
    const doc = JSON.parse(text) as { v?: number; entries?: SummaryEntry[] }
    return doc.v === VERSION && Array.isArray(doc.entries) ? doc.entries : undefined
  } catch {
    // A torn or foreign file is no record: the layer is read instead.
    return undefined
  }
}
