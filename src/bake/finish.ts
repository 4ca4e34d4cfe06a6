import { dedupe, type TargetSpec } from './spec.js'
import type { BakeTarget } from './types.js'

const TARGET_PREFIX = 'target:'

/** The targets a spec takes as named contexts (`target:NAME` values), in context-name order. */
export function targetDeps(spec: TargetSpec): string[] {
  const contexts = spec.contexts ?? {}
  return dedupe(
    Object.keys(contexts)
      .sort()
      .map((k) => contexts[k]!)
      .filter((v) => v.startsWith(TARGET_PREFIX))
      .map((v) => v.slice(TARGET_PREFIX.length)),
  )
}

/** buildx's `normalize` and `ResolveTarget` defaults, into the frozen public shape. */
export function finishTarget(name: string, s: TargetSpec, isLinked: boolean): BakeTarget {
  const contexts = Object.fromEntries(
    Object.entries(s.contexts ?? {})
      .filter(([, v]) => v !== '')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  )
  const entitlements = [...(s.entitlements ?? []), ...(s.network === 'host' ? ['network.host'] : [])]
  return {
    name,
    ...(s.description ? { description: s.description } : {}),
    context: s.context ?? '.',
    dockerfile: s.dockerfile || 'Dockerfile',
    ...(s.dockerfileInline !== undefined ? { dockerfileInline: s.dockerfileInline } : {}),
    ...(s.target !== undefined ? { target: s.target } : {}),
    args: sortedRecord(s.args),
    labels: sortedRecord(s.labels),
    annotations: dedupe(s.annotations ?? []),
    attest: s.attest ?? [],
    tags: dedupe(s.tags ?? []),
    platforms: dedupe(s.platforms ?? []),
    outputs: dedupe(s.outputs ?? [], entryKey),
    contexts,
    dependsOn: targetDeps({ contexts }),
    linked: isLinked,
    cacheFrom: dedupe(s.cacheFrom ?? [], entryKey),
    cacheTo: dedupe(s.cacheTo ?? [], entryKey),
    secrets: dedupe(s.secrets ?? [], (x) => `${x.id}\0${x.src}\0${x.env}`),
    ssh: dedupe(s.ssh ?? [], (x) => `${x.id}\0${x.paths.join('\0')}`),
    ...(s.noCache !== undefined ? { noCache: s.noCache } : {}),
    noCacheFilter: dedupe(s.noCacheFilter ?? []),
    ...(s.pull !== undefined ? { pull: s.pull } : {}),
    ...(s.network !== undefined ? { network: s.network } : {}),
    ...(s.shmSize !== undefined ? { shmSize: s.shmSize } : {}),
    ulimits: dedupe(s.ulimits ?? []),
    extraHosts: sortedRecord(s.extraHosts),
    entitlements: dedupe(entitlements),
    ...(s.call !== undefined ? { call: s.call } : {}),
  }
}

function sortedRecord(m: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

const entryKey = (e: Readonly<Record<string, string>>): string =>
  Object.keys(e)
    .sort()
    .map((k) => `${k}=${e[k]}`)
    .join('\0')
