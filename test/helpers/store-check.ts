/** A store on disk checked from its files alone, as after a crash (a killed build). */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'


/**
 * What is wrong with a store on disk, as a list (empty: it verifies): every blob must hash to
 * its name and sit in blobs/sha256 under a 64-hex name; every cache entry and snapshot record must
 * be whole JSON. Temps of dead writers are allowed (the next build sweeps them).
 */
export function storeProblems(root: string): string[] {
  const problems: string[] = []
  const blobDir = join(root, 'blobs', 'sha256')
  for (const name of existsSync(blobDir) ? readdirSync(blobDir) : []) {
    const p = join(blobDir, name)
    if (!/^[a-f0-9]{64}$/.test(name)) {
      if (!isTemp(name)) problems.push(`blobs/sha256/${name}: not a digest`)
      continue
    }
    const got = createHash('sha256').update(readFileSync(p)).digest('hex')
    if (got !== name) problems.push(`blobs/sha256/${name}: content hashes to ${got}`)
  }
  for (const sub of ['cache', 'snapshots']) {
    const dir = join(root, sub)
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      if (!name.endsWith('.json') || isTemp(name)) continue
      try {
        JSON.parse(readFileSync(join(dir, name), 'utf8'))
      } catch (e) {
        problems.push(`${sub}/${name}: ${(e as Error).message}`)
      }
    }
  }
  return problems
}

// atomic-write.ts names temps `.<name>.<pid>.<n>.tmp`-like; any dot-prefixed or .tmp name is one.
const isTemp = (name: string): boolean => name.startsWith('.') || /\.tmp($|[.-])|\.tmp-/.test(name)
