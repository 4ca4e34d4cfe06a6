/**
 * A failure inside a logical line, at `offset` (a UTF-16 index into that line); the parser turns
 * it into a located `DOCKERFILE_SYNTAX` error.
 */
export class LineError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message)
  }
}
