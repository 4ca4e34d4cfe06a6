/**
 * A writer for the CLI's stdout or stderr that stops writing, quietly, once the reader has gone:
 * `imagesmith inspect x.tar | head` closes the pipe after ten lines, and the write after that fails
 * with EPIPE. Node ignores SIGPIPE, so without a listener that error is an unhandled 'error' event
 * with a stack trace. The command itself goes on to its end and exits as it would have (a build
 * whose digest nobody reads still finishes and cleans up), writing nothing more to that stream.
 */
export function closedPipeWriter(stream: NodeJS.WritableStream): (s: string) => void {
  let closed = false
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e
    closed = true
  })
  return (s) => {
    if (!closed) stream.write(s)
  }
}
