/**
 * The channel from `imagesmith build --build-arg K=V` to the build script it loads. A script picks
 * its builders when it is imported, before any build option reaches it, so values that choose a
 * base image (a converted Dockerfile's `FROM ${BASE}`) must be there at import time. A global symbol,
 * not module state: a script may load its own copy of the library, and both must see the same values.
 */
const KEY = Symbol.for('imagesmith.cliBuildArgs')

type Holder = { [KEY]?: Readonly<Record<string, string>> }

/**
 * The `--build-arg` values of the `imagesmith` command (`build`, `graph`, `dockerfile`) that is
 * loading this build script; `{}` when the script is imported any other way. Modules written by
 * `imagesmith convert` pass them to their `target()`.
 */
export function cliBuildArgs(): Readonly<Record<string, string>> {
  return (globalThis as Holder)[KEY] ?? Object.freeze({})
}

/** Set by the CLI just before it imports a build script. */
export function setCliBuildArgs(args: Readonly<Record<string, string>>): void {
  ;(globalThis as Holder)[KEY] = Object.freeze({ ...args })
}
