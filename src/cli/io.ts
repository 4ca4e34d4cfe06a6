/** Where a command writes: stdout and stderr as functions, so tests capture them. */
export interface Io {
  out: (s: string) => void
  err: (s: string) => void
  /** stderr is a terminal (and not CI): `--progress auto` draws the live view. */
  isTTY?: boolean
}
