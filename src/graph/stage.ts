import type { NodeKind, NodeMeta, SpecByKind } from './node.js'

/**
 * IR (it belongs with the graph, not the builder): frozen plain data describing one stage. Builders are thin views over it;
 * `compileGraph` turns it (and every stage it references) into the flat vertex graph.
 */
export interface StageDef {
  readonly base: StageBase
  readonly steps: readonly Step[]
  /**
   * The platform this stage is built for when it is not the build's (`FROM --platform=…`): a
   * normalised `os/arch[/variant]`, or {@link BUILD_PLATFORM} for the platform the build runs on.
   * Absent: the platform of the stage it starts FROM, else the output's.
   */
  readonly platform?: string
}

/**
 * A stage's platform meaning "the platform the build runs on" (`FROM --platform=$BUILDPLATFORM`): such a
 * stage runs natively, and its vertices are the same for every target platform, so a multi-platform
 * build solves it once (the cross-compilation pattern).
 */
export const BUILD_PLATFORM = '$BUILDPLATFORM'

export type StageBase = { readonly ref: string } | { readonly stage: StageDef }

/** Another stage or an image reference that a step reads from (COPY --from, RUN --mount from=). */
export type StepInput = { readonly ref: string } | { readonly stage: StageDef }

/** A step's spec with `fromInput`-style links still pointing at `deps` (resolved to vertex ids at compile time). */
export interface Step<K extends NodeKind = NodeKind> {
  readonly kind: K
  readonly spec: SpecByKind[K]
  readonly deps: readonly StepInput[]
  readonly meta: NodeMeta
}
