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
}
