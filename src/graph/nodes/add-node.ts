/** ADD: like COPY, plus local archives unpacked and URLs downloaded. */
export interface AddSpec {
  readonly sources: readonly string[]
  readonly dest: string
  readonly fromInput: boolean
  readonly chown?: string
  readonly chmod?: string
  readonly exclude: readonly string[]
  readonly link: boolean
  /** `sha256:<hex>` a URL source must hash to (ADD --checksum) */
  readonly checksum?: string
  /** Unpack local archives. @default true */
  readonly unpack: boolean
}
