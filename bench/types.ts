/** The seam between the bench runner and its cases: each file in bench/cases/ default-exports a BenchCase. */
export interface BenchCase {
  readonly name: string
  run(): Promise<readonly BenchRow[]>
}

/** One line of the result table. Times are medians over the case's runs. */
export interface BenchRow {
  readonly case: string
  readonly imagesmithS: number
  readonly floorS: number
  readonly targetRatio: number
  readonly peakRssMB: number
  readonly rssLimitMB: number
  /** Free text shown after the table (what the floor is, sizes, digests). */
  readonly notes?: readonly string[]
  /** The same work done by other tools in the same run (a second table, with speed-up columns). */
  readonly peers?: readonly PeerResult[]
  /** Speed-ups the row must reach against named peers (peer time / imagesmith time ≥ minSpeedup). */
  readonly peerTargets?: readonly PeerTarget[]
}

/** A peer's median time for the row, or why it has none. */
export type PeerResult = { readonly name: string; readonly s: number; readonly runs: readonly number[] } | { readonly name: string; readonly skipped: string }

export interface PeerTarget {
  readonly peer: string
  /** 2 = at least twice as fast as the peer; 1 = no slower. */
  readonly minSpeedup: number
}
