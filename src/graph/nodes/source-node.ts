/**
 * Where a stage starts: `scratch`, or a local image (`oci-archive:PATH[:TAG]`, `oci:DIR[:TAG]`,
 * `docker-archive:PATH`). Registry references are resolved by a later resolver; see sources/base.
 */
export interface SourceSpec {
  readonly ref: string
}
