import { tempPath } from '../store/atomic-write.js'
import type { LocalImportRequest } from './local-import.js'
import { baseInvalid } from './resolve.js'
import { TarArchive, TarFormatError } from './tar-index.js'

/**
 * Opens a local image archive for random access, runs `fn`, and closes it (removing any
 * decompressed copy). A malformed archive is reported as the base image's fault.
 */
export async function withArchive<T>(req: LocalImportRequest, fn: (archive: TarArchive) => Promise<T>): Promise<T> {
  let archive: TarArchive | undefined
  try {
    archive = await TarArchive.open(req.ref.path, tempPath(req.blobs.tmpDir, 'archive'))
    return await fn(archive)
  } catch (e) {
    if (e instanceof TarFormatError) throw baseInvalid(req.refText, `cannot read archive: ${e.message}`, { path: req.ref.path }, e)
    throw e
  } finally {
    await archive?.close()
  }
}
