import type { ImageBuilder } from '../builder/image-builder.js'
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
