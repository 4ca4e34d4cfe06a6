import type { Dockerfile, ParseOptions } from './ast.js'

/**
 * Parses a Dockerfile as BuildKit's `frontend/dockerfile/parser.Parse` does. Throws
 * `DOCKERFILE_SYNTAX` / `UNKNOWN_INSTRUCTION` (details: line, column, text).
 */
export function parseDockerfile(input: string | Uint8Array, options: ParseOptions = {}): Dockerfile {
  void input
  void options
  throw new Error('not implemented yet')
}
