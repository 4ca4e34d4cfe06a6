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
  /** An absolute directory read instead of the build context (a named context that is a directory). */
  readonly context?: string
  readonly chown?: string
  readonly chmod?: string
  readonly exclude: readonly string[]
  readonly link: boolean
  /** `COPY --parents`: sources keep their paths (after a `/./` pivot) below dest. */
  readonly parents?: true
  /**
   * Files whose content is in the spec (a Dockerfile's `COPY <<EOF`), placed like context sources
   * named `name`, mode 0644 unless `chmod`. `expand` (with the spec's marker) expands `$VAR` in the
   * content, leaving quotes alone, as BuildKit does for an unquoted heredoc delimiter.
   */
  readonly inline?: readonly InlineFile[]
}

export interface InlineFile {
  readonly name: string
  readonly data: string
  readonly expand?: true
}
