/**
 * The resolved shape of a bake target: what `docker buildx bake --print` shows for one target, as frozen
 * plain data. Lists and maps are always present (empty when unset); scalars are absent when unset.
 */

/** An `output`, `cache-from` or `cache-to` entry: `type` plus its attributes (`dest`, `ref`, `mode`, …), flat. */
export type BakeEntry = Readonly<{ type: string } & Record<string, string>>

/** A `secret` entry: `id` with a file (`src`) or an environment variable (`env`). */
export interface BakeSecret {
  readonly id?: string
  readonly src?: string
  readonly env?: string
}

/** An `ssh` entry: an agent socket or keys (`paths`) under `id` (`default` when unnamed). */
export interface BakeSsh {
  readonly id: string
  readonly paths: readonly string[]
}

export interface BakeTarget {
  /** The target's name (the key under `target` in the file, or the script's export name). */
  readonly name: string
  readonly description?: string
  /** The build context directory or URL; `.` when unset. */
  readonly context: string
  /** The Dockerfile, relative to the context; `Dockerfile` when unset. */
  readonly dockerfile: string
  readonly dockerfileInline?: string
  /** The stage to build (`target` in the file). */
  readonly target?: string
  readonly args: Readonly<Record<string, string>>
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: readonly string[]
  readonly attest: readonly BakeEntry[]
  readonly tags: readonly string[]
  readonly platforms: readonly string[]
  readonly outputs: readonly BakeEntry[]
  /** Named build contexts; a `target:NAME` value makes NAME a dependency (`dependsOn`). */
  readonly contexts: Readonly<Record<string, string>>
  /** Targets this one takes as a named context (`contexts` values `target:NAME`), in context-name order. */
  readonly dependsOn: readonly string[]
  /** True when the target was not asked for and is built only because another takes it as a context (output `cacheonly`). */
  readonly linked: boolean
  readonly cacheFrom: readonly BakeEntry[]
  readonly cacheTo: readonly BakeEntry[]
  readonly secrets: readonly BakeSecret[]
  readonly ssh: readonly BakeSsh[]
  readonly noCache?: boolean
  readonly noCacheFilter: readonly string[]
  readonly pull?: boolean
  readonly network?: string
  readonly shmSize?: string
  readonly ulimits: readonly string[]
  readonly extraHosts: Readonly<Record<string, string>>
  readonly entitlements: readonly string[]
  readonly call?: string
}

export interface BakeGroup {
  readonly name: string
  readonly description?: string
  readonly targets: readonly string[]
}

/** What a bake resolves to: the groups it went through and every target to build, by name. */
export interface BakePlan {
  readonly groups: Readonly<Record<string, BakeGroup>>
  readonly targets: Readonly<Record<string, BakeTarget>>
}
