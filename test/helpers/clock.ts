/**
 * A fixed or shifted wall clock (Date.now) for the length of `fn`: the stat cache's racy window is
 * judged against it, so a test decides whether a file written just now counts as settled.
 */

/** Runs `fn` with Date.now reading `ms` (epoch milliseconds). */
export function clockAt<T>(ms: number, fn: () => Promise<T> | T): Promise<T> {
  return withNow(() => ms, fn)
}

/** Runs `fn` with Date.now `ms` milliseconds ahead of the real clock. */
export function clockAhead<T>(ms: number, fn: () => Promise<T> | T): Promise<T> {
  const real = Date.now
  return withNow(() => real() + ms, fn)
}

async function withNow<T>(now: () => number, fn: () => Promise<T> | T): Promise<T> {
  const real = Date.now
  Date.now = now
  try {
    return await fn()
  } finally {
    Date.now = real
  }
}
