import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { parseReference } from '../reference/reference.js'
import { sniffFile } from '../util/sniff.js'
import { TarArchive } from './tar-index.js'

/** What a FROM string that is a path most likely meant: the transport that fits what is there. */
type Transport = 'oci' | 'oci-archive' | 'docker-archive'

/** `/abs`, `./rel`, `../up`, `~/home`: never an image name, whatever is on disk. */
export function looksLikePath(ref: string): boolean {
  return /^(?:\/|\.{1,2}\/|~\/)/.test(ref)
}

/**
 * When a FROM reference is a path (by its shape, or because a file or directory of that name
 * exists), the error that says which transport to write: `oci:` for a layout directory,
 * `oci-archive:` or `docker-archive:` for a tar, told by its `index.json` or `manifest.json`.
 * Undefined when the string is no path: it is then judged as an image name.
 */
export async function pathReferenceError(ref: string, tmpDir: string): Promise<ImagesmithError | undefined> {
  const path = resolve(ref)
  let st: import('node:fs').Stats | undefined
  try {
    st = await fsp.stat(path)
  } catch {
    st = undefined
  }
  const shaped = looksLikePath(ref)
  if (!st && !shaped) return undefined
  let fits: Transport[]
  if (!st) fits = ['oci-archive', 'docker-archive', 'oci']
  else if (st.isDirectory()) fits = ['oci']
  else fits = await archiveKind(path, tmpDir)
  // `debian` beside a directory of that name is still the image `debian`: a well-formed name wins
  // unless what is there is an image (a layout, a tar).
  if (!shaped && isName(ref) && !(st!.isDirectory() ? await exists(join(path, 'oci-layout')) : (await sniffFile(path).catch(() => 'unknown')) !== 'unknown')) return undefined
  const forms = fits.map((t) => `${t}:${ref}`)
  const what = !st ? `${path} does not exist; a local image is written` : fits.length === 1 ? 'a local image is written' : 'write it as'
  const message = `${JSON.stringify(ref)} is a path, not an image reference: ${what} ${forms.join(' or ')}`
  return new ImagesmithError(ErrorCodes.INVALID_REFERENCE, message, { reference: ref, part: 'name', path, suggestion: forms[0] })
}

function isName(ref: string): boolean {
  try {
    parseReference(ref)
    return true
  } catch {
    return false
  }
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(() => true, () => false)
}

/** An uncompressed tar says which archive it is by its members; anything else could be either. */
async function archiveKind(path: string, tmpDir: string): Promise<Transport[]> {
  const both: Transport[] = ['oci-archive', 'docker-archive']
  try {
    if ((await sniffFile(path)) !== 'tar') return both
    // The temp path is only used for a compressed archive, which was ruled out above.
    const archive = await TarArchive.open(path, join(tmpDir, 'unused'))
    try {
      if (archive.has('index.json') || archive.has('oci-layout')) return ['oci-archive']
      if (archive.has('manifest.json')) return ['docker-archive']
    } finally {
      await archive.close()
    }
  } catch {
    /* unreadable: say both */
  }
  return both
}
