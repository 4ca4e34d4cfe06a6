import { ImageBuilder } from '../builder/image-builder.js'
import type { Step } from '../graph/stage.js'
import { ErrorCodes, ImagesmithError } from '../errors.js'
import { lowerInstruction, type LowerScope } from './lower-instruction.js'
import { parseDockerfile } from './parser.js'

/**
 * A base image's ONBUILD trigger (Dockerfile text, one instruction) applied to the child stage right
 * after its FROM, as Docker runs it: words are expanded against the child's environment at build time;
 * `--from` names an image (the child's stage names are not in scope).
 */
export function applyTrigger(b: ImageBuilder, text: string, scratch: () => ImageBuilder): ImageBuilder {
  const df = parseDockerfile(text, { filename: 'ONBUILD trigger' })
  if (df.instructions.length !== 1) {
    throw new ImagesmithError(ErrorCodes.DOCKERFILE_SYNTAX, `an ONBUILD trigger must hold exactly one instruction: ${JSON.stringify(text)}`, { trigger: text })
  }
  const inst = df.instructions[0]!
  if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(inst.keyword)) {
    throw new ImagesmithError(ErrorCodes.DOCKERFILE_SYNTAX, `${inst.keyword} isn't allowed as an ONBUILD trigger`, { trigger: text })
  }
  const scope: LowerScope = {
    escapeToken: df.escapeToken,
    args: new Map(),
    input: (name) => name,
    arg: (name, defaultWord) => (defaultWord === undefined ? { name } : { name, value: defaultWord, expand: true }),
    scratch,
  }
  return lowerInstruction(b, inst, scope)
}

/**
 * ONBUILD trigger text as steps: each is parsed as a Dockerfile instruction and lowered as one. The
 * builder cannot parse Dockerfile text (the parser lowers onto builders), so this is given to it:
 * by the build (pipeline/onbuild.ts), the CLI and the printer, and as the default of `graph()` by the package entry.
 */
export function lowerTriggers(triggers: readonly string[]): readonly Step[] {
  let b = new ImageBuilder()
  for (const text of triggers) b = applyTrigger(b, text, () => new ImageBuilder())
  return b.toStage().steps
}
