/**
 * dive's CI rules (`.dive-ci`): the same keys, defaults and comparisons as dive
 * (`cmd/dive/cli/internal/command/ci/rules.go`, `options/ci_rules.go`), so one file gates both.
 */
import { promises as fsp } from 'node:fs'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import type { DiveFigures } from '../insight/analyze.js'
import { parseBytes } from './format.js'

export interface DiveRules {
  /** Fails when efficiency is below it (0–1). */
  readonly lowestEfficiency?: number
  /** Fails when dive's wasted bytes are above it. */
  readonly highestWastedBytes?: number
  /** Fails when wasted / user bytes is above it (0–1). */
  readonly highestUserWastedPercent?: number
}

/** dive's defaults: lowest-efficiency 0.9, highest-wasted-bytes disabled, highest-user-wasted-percent 0.1. */
export const DIVE_DEFAULT_RULES: DiveRules = Object.freeze({ lowestEfficiency: 0.9, highestUserWastedPercent: 0.1 })

/** A `.dive-ci` larger than this is not a rules file. */
const MAX_FILE = 64 << 10

const KEYS: Readonly<Record<string, keyof DiveRules>> = Object.freeze({
  lowestefficiency: 'lowestEfficiency',
  highestwastedbytes: 'highestWastedBytes',
  highestuserwastedpercent: 'highestUserWastedPercent',
})
const DISABLED = new Set(['', 'disabled', 'off', 'false'])

/**
 * The rules of a `.dive-ci` file: `rules:` then `key: value` lines, camelCase (dive's legacy
 * keys) or kebab/snake case; a rule the file does not name keeps dive's default.
 */
export async function readDiveRules(path: string): Promise<DiveRules> {
  let text: string
  try {
    const st = await fsp.stat(path)
    if (st.size > MAX_FILE) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}: larger than ${MAX_FILE} bytes`, { path })
    text = await fsp.readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return DIVE_DEFAULT_RULES
    throw e
  }
  return parseDiveRules(text, path)
}

export function parseDiveRules(text: string, path: string): DiveRules {
  const rules: { -readonly [K in keyof DiveRules]: DiveRules[K] } = { ...DIVE_DEFAULT_RULES }
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*$/, '').trimEnd()
    if (line.trim() === '' || line.trim() === 'rules:') continue
    const colon = line.indexOf(':')
    const key = KEYS[line.slice(0, colon).trim().replace(/[-_]/g, '').toLowerCase()]
    if (colon < 0 || !key) throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}:${i + 1}: not a dive rule: ${raw.trim()}`, { path, line: i + 1 })
    const value = line.slice(colon + 1).trim().replace(/^(["'])(.*)\1$/, '$2')
    if (DISABLED.has(value.toLowerCase())) {
      delete rules[key]
      continue
    }
    const n = key === 'highestWastedBytes' ? parseBytes(value) : Number(value)
    if (n === undefined || !Number.isFinite(n) || n < 0) {
      throw new ImagesmithError(ErrorCodes.INVALID_ARGUMENT, `${path}:${i + 1}: ${key} takes ${key === 'highestWastedBytes' ? 'a size (20MB)' : 'a ratio (0.9)'}, not ${value}`, { path, line: i + 1 })
    }
    rules[key] = n
  }
  return rules
}

export interface RuleResult {
  readonly rule: keyof DiveRules
  readonly threshold: number
  readonly actual: number
  readonly passed: boolean
}

/** Each enabled rule against the figures, compared as dive compares them. */
export function checkDiveRules(rules: DiveRules, d: DiveFigures): RuleResult[] {
  const out: RuleResult[] = []
  if (rules.lowestEfficiency !== undefined) out.push({ rule: 'lowestEfficiency', threshold: rules.lowestEfficiency, actual: d.efficiency, passed: !(rules.lowestEfficiency > d.efficiency) })
  if (rules.highestWastedBytes !== undefined) out.push({ rule: 'highestWastedBytes', threshold: rules.highestWastedBytes, actual: d.wastedBytes, passed: !(d.wastedBytes > rules.highestWastedBytes) })
  if (rules.highestUserWastedPercent !== undefined) out.push({ rule: 'highestUserWastedPercent', threshold: rules.highestUserWastedPercent, actual: d.userWastedPercent, passed: !(d.userWastedPercent > rules.highestUserWastedPercent) })
  return out
}
