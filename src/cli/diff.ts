import { diffFiles, finalFiles } from '../insight/image-diff.js'
import { readImageLayers } from '../insight/image-insight.js'
import type { ImageSource } from '../insight/image-source.js'
import { openAnyImage } from './any-image.js'
import { REGISTRY_FLAGS } from './registry-flags.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'
import { wantsJson } from './inspect.js'
import { diffText } from './insight-view.js'
import type { Io } from './io.js'

export const DIFF_HELP = `  imagesmith diff <A> <B> [--format table|json] [--cache-dir DIR]
                   added, removed and changed paths (content, size, mode, owner) between two images' filesystems;
                   A and B are archives, layouts or local image names`

/** `imagesmith diff A B`: the two images' final filesystems (whiteouts applied), compared path by path. */
export async function diffCommand(args: ParsedArgs, io: Pick<Io, 'out'>): Promise<number> {
  assertKnownFlags(args, ['--json', '--format', '--cache-dir', '--platform', ...REGISTRY_FLAGS])
  const [a, b] = args.positionals
  if (!a || !b || args.positionals.length > 2) throw new UsageError('diff needs two images (archives, layouts or local image names)')
  const json = wantsJson(args)
  const cacheDir = one(args, '--cache-dir') ?? defaultCacheDir()
  const [fa, fb] = [await filesOf(a, args, cacheDir), await filesOf(b, args, cacheDir)]
  const d = diffFiles(fa, fb)
  io.out(json ? `${JSON.stringify(d, null, 2)}\n` : diffText(d))
  return 0
}

async function filesOf(text: string, args: ParsedArgs, cacheDir: string) {
  const src: ImageSource = await openAnyImage(text, args, cacheDir)
  try {
    if (src.images.length !== 1) throw new UsageError(`${text} holds ${src.images.length} images; diff takes one image each (an index's platforms are not chosen yet)`)
    return finalFiles(await readImageLayers(src, src.images[0]!, { hash: true }))
  } finally {
    await src.close()
  }
}
