import { ErrorCodes, InvalidArgumentError } from '../errors.js'

/** What `build({ attest })` asks for: BuildKit's `--attest type=sbom` / `type=provenance,mode=…`. */
export interface AttestOptions {
  /** An SPDX SBOM of each platform image. @default false */
  readonly sbom?: boolean
  /**
   * SLSA provenance of each platform image: `'min'` (BuildKit's and buildx's `--provenance=true`) leaves
   * out build args, labels and secret ids; `'max'` adds them and the build definition. @default false
   */
  readonly provenance?: boolean | 'min' | 'max'
  /** Provenance `builder.id` (BuildKit's `builder-id`): a URI naming who ran the build. */
  readonly builderId?: string
  /** The Dockerfile or build script the build came from: provenance's `entryPoint`, and its text in max mode. */
  readonly source?: string
  /** The target the build was asked for (`--target`), recorded in the provenance. */
  readonly target?: string
}

export interface ResolvedAttest {
  readonly sbom: boolean
  readonly provenance?: 'min' | 'max'
  readonly builderId?: string
  readonly source?: string
  readonly target?: string
}

const KEYS = ['sbom', 'provenance', 'builderId', 'source', 'target']

/** `attest` checked: undefined when nothing is asked (the output stays a plain image). */
export function resolveAttest(attest: AttestOptions | undefined): ResolvedAttest | undefined {
  if (attest === undefined) return undefined
  if (typeof attest !== 'object' || attest === null) throw invalid('attest', attest, 'attest must be an object like { sbom: true, provenance: "max" }')
  for (const k of Object.keys(attest)) if (!KEYS.includes(k)) throw invalid(`attest.${k}`, (attest as Record<string, unknown>)[k], `unknown attest option ${k} (${KEYS.join(', ')})`)
  if (attest.sbom !== undefined && typeof attest.sbom !== 'boolean') throw invalid('attest.sbom', attest.sbom, 'attest.sbom must be true or false')
  const p: unknown = attest.provenance
  if (p !== undefined && p !== true && p !== false && p !== 'min' && p !== 'max') throw invalid('attest.provenance', p, "attest.provenance must be true, false, 'min' or 'max'")
  for (const k of ['builderId', 'source', 'target'] as const) {
    if (attest[k] !== undefined && typeof attest[k] !== 'string') throw invalid(`attest.${k}`, attest[k], `attest.${k} must be a string`)
  }
  const provenance = p === true ? 'min' : p === false || p === undefined ? undefined : p
  if (!attest.sbom && provenance === undefined) return undefined
  return {
    sbom: attest.sbom === true,
    ...(provenance ? { provenance } : {}),
    ...(attest.builderId ? { builderId: attest.builderId } : {}),
    ...(attest.source ? { source: attest.source } : {}),
    ...(attest.target ? { target: attest.target } : {}),
  }
}

function invalid(option: string, value: unknown, message: string): InvalidArgumentError {
  return new InvalidArgumentError(ErrorCodes.ATTEST_OPTION_INVALID, `${message}, got ${JSON.stringify(value)}`, { option, value })
}
