import type { CopySpec } from './copy-node.js'

/** ADD: like COPY, plus local archives unpacked and URLs downloaded. */
export interface AddSpec extends CopySpec {
  /** `sha256:<hex>` a URL source must hash to (ADD --checksum) */
  readonly checksum?: string
  /** Unpack local archives. @default true */
  readonly unpack: boolean
  /** Keep the `.git` directory of a git source (`ADD --keep-git-dir`). */
  readonly keepGitDir?: true
}
