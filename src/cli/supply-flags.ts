import type { AttestOptions } from '../attest/options.js'
import type { BuildOptions } from '../pipeline/options.js'
import { UsageError, many, one, parseCsvPairs, type ParsedArgs } from './args.js'

/** buildx's attestation flags, and the reproducibility opt-out. */
export const SUPPLY_FLAGS = ['--sbom', '--provenance', '--attest', '--reproducible'] as const

export const SUPPLY_FLAGS_HELP = `Supply chain, as buildx: --sbom=true (an SPDX SBOM per platform image), --provenance=mode=min|max (or true = min,
false), --attest type=sbom / --attest type=provenance,mode=max[,builder-id=URI] (repeatable; disabled=true turns one off);
attestations make the output an image index. --reproducible=false keeps RUN layers' real file times and a wall-clock
created (default true: times clamped to SOURCE_DATE_EPOCH, else 0).`

const bool = (flag: string, v: string): boolean => {
  if (v === 'true' || v === '1') return true
  if (v === 'false' || v === '0') return false
  throw new UsageError(`${flag} ${v}: true or false`)
}

function provenanceOf(flag: string, kv: Map<string, string>): AttestOptions['provenance'] {
  for (const k of kv.keys()) if (!['type', 'mode', 'disabled', 'builder-id'].includes(k)) throw new UsageError(`${flag}: unknown provenance option ${k} (mode, builder-id, disabled)`)
  if (kv.has('disabled') && bool(flag, kv.get('disabled')!)) return false
  const mode = kv.get('mode') ?? 'min'
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`${flag}: mode must be min or max, got ${mode}`)
  return mode
}

/**
 * `--sbom`, `--provenance`, `--attest` (as `docker buildx build` takes them: `--provenance=true` is
 * mode=min, `--attest type=provenance` without a mode is min too) and `--reproducible`.
 */
export function supplyOptions(args: ParsedArgs, source: { path?: string; target?: string }): Pick<BuildOptions, 'attest' | 'reproducible'> {
  let sbom: boolean | undefined
  let provenance: AttestOptions['provenance']
  let builderId: string | undefined
  const sbomText = one(args, '--sbom')
  if (sbomText !== undefined) {
    const kv = sbomText.includes('=') ? parseCsvPairs(sbomText, '--sbom') : undefined
    if (kv) for (const k of kv.keys()) if (k !== 'disabled') throw new UsageError(`--sbom ${sbomText}: only true, false or disabled=… (no custom generator)`)
    sbom = kv ? !bool('--sbom', kv.get('disabled')!) : bool('--sbom', sbomText)
  }
  const provText = one(args, '--provenance')
  if (provText !== undefined) {
    if (!provText.includes('=')) provenance = bool('--provenance', provText) ? 'min' : false
    else {
      const kv = parseCsvPairs(provText, '--provenance')
      provenance = provenanceOf(`--provenance ${provText}`, kv)
      builderId = kv.get('builder-id') ?? builderId
    }
  }
  const entries = attestEntries(many(args, '--attest'), '--attest')
  if (entries.sbom !== undefined) sbom = entries.sbom
  if (entries.provenance !== undefined) provenance = entries.provenance
  builderId = entries.builderId ?? builderId
  const reproducible = one(args, '--reproducible')
  const attest: AttestOptions | undefined = sbom || provenance
    ? { ...(sbom ? { sbom } : {}), ...(provenance ? { provenance } : {}), ...(builderId ? { builderId } : {}), ...(source.path ? { source: source.path } : {}), ...(source.target ? { target: source.target } : {}) }
    : undefined
  return { ...(attest ? { attest } : {}), ...(reproducible !== undefined ? { reproducible: bool('--reproducible', reproducible) } : {}) }
}

/** `--attest` entries (a bake file's `attest` list too), each `type=sbom|provenance,…`; the last of a type wins. */
export function attestEntries(texts: readonly string[], flag: string): { sbom?: boolean; provenance?: AttestOptions['provenance']; builderId?: string } {
  const out: { sbom?: boolean; provenance?: AttestOptions['provenance']; builderId?: string } = {}
  for (const text of texts) {
    const kv = parseCsvPairs(text, flag)
    const type = kv.get('type')
    if (type === 'sbom') {
      for (const k of kv.keys()) if (k !== 'type' && k !== 'disabled') throw new UsageError(`${flag} ${text}: unknown sbom option ${k} (no custom generator)`)
      out.sbom = !(kv.has('disabled') && bool(flag, kv.get('disabled')!))
    } else if (type === 'provenance') {
      out.provenance = provenanceOf(`${flag} ${text}`, kv)
      const id = kv.get('builder-id')
      if (id !== undefined) out.builderId = id
    } else throw new UsageError(`${flag} ${text}: type must be sbom or provenance`)
  }
  return out
}
