/**
 * The flags each instruction accepts and how their values are checked, as BuildKit's instruction
 * stage (`instructions/parse.go`, `bflag.go`) does it. The parser applies this unless it is asked
 * for BuildKit's bare parser output (whose tests use made-up flags).
 */
import type { Flag } from './ast.js'

type FlagType = 'bool' | 'string' | 'strings'

const HEALTH = { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' } as const

/** Instructions not listed here (ARG, STOPSIGNAL) never look at their flags in BuildKit. */
const FLAGS: Readonly<Record<string, Readonly<Record<string, FlagType>>>> = {
  ADD: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', unpack: 'bool', exclude: 'strings' },
  COPY: { chown: 'string', from: 'string', chmod: 'string', link: 'bool', exclude: 'strings', parents: 'bool' },
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string', device: 'strings' },
  HEALTHCHECK: HEALTH,
  CMD: {},
  ENTRYPOINT: {},
  ENV: {},
  EXPOSE: {},
  LABEL: {},
  MAINTAINER: {},
  ONBUILD: {},
  SHELL: {},
  USER: {},
  VOLUME: {},
  WORKDIR: {},
}

/**
 * The first problem with an instruction's flags as BuildKit's BFlags.Parse reports it, with the
 * index of the offending flag; undefined when they are fine. `healthcheckNone` skips the check as
 * BuildKit does for `HEALTHCHECK NONE`.
 */
export function checkFlags(keyword: string, flags: readonly Flag[], healthcheckNone: boolean): { index: number; message: string } | undefined {
  const table = FLAGS[keyword]
  if (!table || (keyword === 'HEALTHCHECK' && healthcheckNone)) return undefined
  const used = new Set<string>()
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i]!
    const flagName = `--${f.name}`
    const type = Object.hasOwn(table, f.name) ? table[f.name] : undefined
    if (!type) {
      const names = Object.keys(table)
      const hint = suggest(f.name, names)
      return { index: i, message: `unknown flag: ${flagName}${hint ? ` (did you mean ${hint}?)` : ''}` }
    }
    if (used.has(f.name) && type !== 'strings') return { index: i, message: `duplicate flag specified: ${flagName}` }
    used.add(f.name)
    if (type === 'bool') {
      if (f.value === '') return { index: i, message: `missing a value on flag: ${flagName}` }
      const v = (f.value ?? '').toLowerCase()
      if (v !== 'true' && v !== '' && v !== 'false') return { index: i, message: `expecting boolean value for flag ${flagName}, not: ${f.value}` }
    } else if (f.value === undefined) {
      return { index: i, message: `missing a value on flag: ${flagName}` }
    }
  }
  return undefined
}

/**
 * BuildKit's suggest.Search: the candidate at the smallest Levenshtein distance under 3, in the
 * case the word was written in (all lower / all upper) when matching case-insensitively.
 */
export function suggest(word: string, candidates: readonly string[], caseSensitive = true): string | undefined {
  const val = caseSensitive ? word : word.toLowerCase()
  let match: string | undefined
  let min = 3
  for (const c of candidates) {
    const opt = caseSensitive ? c : c.toLowerCase()
    if (opt === val) return undefined
    const d = editDistance(val, opt)
    if (d < min) {
      min = d
      match = caseSensitive ? opt : word === word.toLowerCase() ? opt : word === word.toUpperCase() ? opt.toUpperCase() : opt
    }
  }
  return match
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) >= 3 || a.length > 64 || b.length > 64) return Infinity
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]!
}
