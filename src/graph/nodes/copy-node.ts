import type { Expandable } from '../expansion.js'

/**
 * COPY: files from the build context, or from another stage/image when the vertex has a second input.
 * With `expand`, sources, dest, chown, chmod and exclude are shell words (see graph/expansion).
 */
export interface CopySpec extends Expandable {
  readonly sources: readonly string[]
  readonly dest: string
  /** true when `inputs[1]` is the stage or image to copy from (COPY --from) */
  readonly fromInput: boolean
  readonly chown?: string
  readonly chmod?: string
  readonly exclude: readonly string[]
  readonly link: boolean
}
