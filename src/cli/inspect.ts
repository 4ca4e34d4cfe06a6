import { existsSync } from 'node:fs'
import type { Digest } from '../oci/media-types.js'
import { inspectImages, type InspectedImage } from '../sources/inspect.js'
import { defaultCacheDir } from '../store/default-dir.js'
import { openImageSource } from '../insight/image-source.js'
import { imageInsight } from '../insight/image-insight.js'
import { UsageError, assertKnownFlags, one, type ParsedArgs } from './args.js'
import { openAnyImage } from './any-image.js'
import { REGISTRY_FLAGS } from './registry-flags.js'
import { checkDiveRules, readDiveRules } from './dive-ci.js'
import { formatSize } from './format.js'
import { layersTable, rulesText } from './insight-view.js'
import type { Io } from './io.js'
import { ATTESTATION_FLAGS, inspectAttestations } from './inspect-attestations.js'

/** `imagesmith inspect`: an archive or layout on disk, else a local image name. */
export async function inspectCommand(args: ParsedArgs, io: Pick<Io, 'out'>): Promise<number> {
  assertKnownFlags(args, ['--json', '--format', '--cache-dir', '--layers', '--ci', '--ci-config', '--platform', ...REGISTRY_FLAGS, ...ATTESTATION_FLAGS])
  const path = args.positionals[0]
  if (!path || args.positionals.length > 1) throw new UsageError('inspect needs one archive or layout path, or a local image name')
  if (args.flags.has('--attestations')) return inspectAttestations(args, io, path, one(args, '--cache-dir') ?? defaultCacheDir())
  const json = wantsJson(args)
  if (args.flags.has('--layers') || args.flags.has('--ci')) return inspectLayersCommand(args, path, json, io)
  if (args.flags.has('--ci-config')) throw new UsageError('--ci-config goes with --ci')
  const images = existsSync(path) ? await inspectImages(path) : await inspectLocal(path, one(args, '--cache-dir') ?? defaultCacheDir())
  if (json) {
    io.out(`${JSON.stringify(images, null, 2)}\n`)
    return 0
  }
  let shownIndex: Digest | undefined
  for (const img of images) {
    const c = img.config
    // An index (a multi-platform image) is named once, with its platforms; each image follows.
    if (img.indexDigest !== undefined && img.indexDigest !== shownIndex) {
      shownIndex = img.indexDigest
      const platforms = images.filter((i) => i.indexDigest === img.indexDigest).map((i) => i.platform ?? `${i.config.os}/${i.config.architecture}`)
      io.out(`Name:         ${img.name ?? '(none)'}\n`)
      io.out(`Index:        ${img.indexDigest}\n`)
      io.out(`Platforms:    ${platforms.join(', ')}\n`)
      io.out('\n')
    }
    io.out(`Name:         ${img.name ?? '(none)'}\n`)
    io.out(`Digest:       ${img.manifestDigest}\n`)
    io.out(`Config:       ${img.manifest.config.digest}\n`)
    io.out(`Platform:     ${c.os}/${c.architecture}${c.variant ? `/${c.variant}` : ''}\n`)
    io.out(`Created:      ${c.created ?? ''}\n`)
    const cc = c.config ?? {}
    if (cc.Entrypoint) io.out(`Entrypoint:   ${JSON.stringify(cc.Entrypoint)}\n`)
    if (cc.Cmd) io.out(`Cmd:          ${JSON.stringify(cc.Cmd)}\n`)
    if (cc.WorkingDir) io.out(`WorkingDir:   ${cc.WorkingDir}\n`)
    if (cc.User) io.out(`User:         ${cc.User}\n`)
    for (const e of cc.Env ?? []) io.out(`Env:          ${e}\n`)
    if (cc.ExposedPorts) io.out(`ExposedPorts: ${Object.keys(cc.ExposedPorts).join(' ')}\n`)
    if (cc.Volumes) io.out(`Volumes:      ${Object.keys(cc.Volumes).join(' ')}\n`)
    for (const [k, v] of Object.entries(cc.Labels ?? {})) io.out(`Label:        ${k}=${v}\n`)
    io.out(`Layers:\n`)
    for (const [i, l] of img.manifest.layers.entries()) io.out(`  ${l.digest}  ${formatSize(l.size).padStart(9)}  ${c.rootfs.diff_ids[i] ?? ''}\n`)
    io.out(`History:\n`)
    for (const h of c.history ?? []) io.out(`  ${h.empty_layer ? '      ' : 'layer '} ${h.created_by ?? ''}\n`)
    io.out('\n')
  }
  return 0
}

/** `--json`, or `--format json|table` as `docker` spells it. */
export function wantsJson(args: ParsedArgs): boolean {
  const format = one(args, '--format')
  if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError(`--format takes json or table, not ${format}`)
  return args.flags.has('--json') || format === 'json'
}

/**
 * `inspect --layers`: every layer streamed once; per layer its step, counts and largest paths,
 * then the bytes later layers hide and dive's figures. `--ci` checks `.dive-ci`'s rules (or the
 * file `--ci-config` names) and fails with exit code 1 when one fails.
 */
async function inspectLayersCommand(args: ParsedArgs, path: string, json: boolean, io: Pick<Io, 'out'>): Promise<number> {
  const ci = args.flags.has('--ci')
  const rules = ci ? await readDiveRules(one(args, '--ci-config') ?? '.dive-ci') : undefined
  if (!ci && args.flags.has('--ci-config')) throw new UsageError('--ci-config goes with --ci')
  const src = await openAnyImage(path, args, one(args, '--cache-dir') ?? defaultCacheDir())
  let failed = false
  const reports = []
  try {
    for (const img of src.images) {
      const insight = await imageInsight(src, img)
      const results = rules ? checkDiveRules(rules, insight.dive) : undefined
      if (results?.some((r) => !r.passed)) failed = true
      if (json) {
        reports.push({ name: img.name, manifestDigest: img.manifestDigest, ...(img.platform ? { platform: img.platform } : {}), ...insight, ...(results ? { ci: results } : {}) })
        continue
      }
      io.out(`Image:       ${img.name ?? '(none)'} ${img.manifestDigest}${img.platform ? ` ${img.platform}` : ''}\n`)
      io.out(layersTable(insight))
      if (results) io.out(`CI rules:    ${results.every((r) => r.passed) ? 'PASS' : 'FAIL'}\n${rulesText(results)}`)
      io.out('\n')
    }
  } finally {
    await src.close()
  }
  if (json) io.out(`${JSON.stringify(reports, null, 2)}\n`)
  return failed ? 1 : 0
}

/** A local image by name or digest prefix (`imagesmith images`), as `docker inspect NAME` takes it; an index gives each of its images. */
async function inspectLocal(text: string, cacheDir: string): Promise<readonly InspectedImage[]> {
  const src = await openImageSource(text, cacheDir)
  await src.close()
  return src.images
}
