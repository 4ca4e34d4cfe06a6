/** Credentials given directly, ahead of config.json: a password, or an identity (refresh) token. */
export type RegistryCredentials =
  | { readonly username: string; readonly password: string }
  | { readonly username?: string; readonly identityToken: string }

/** How registries are reached. Part of `BuildOptions.registry`; also what `imagesmith pull` takes. */
export interface RegistryOptions {
  /**
   * Pull mirrors per registry, tried in order before the registry itself (BuildKit's
   * `[registry."docker.io"] mirrors`). A mirror is `host[:port]`. Mirrors serve pulls only.
   * @default $IMAGESMITH_REGISTRY_MIRRORS (`docker.io=127.0.0.1:5000,…`), else none
   * @example { 'docker.io': ['127.0.0.1:5000'] }
   */
  readonly mirrors?: Readonly<Record<string, readonly string[]>>
  /**
   * Registries (`host[:port]`) reached over plain HTTP. Loopback registries (127.0.0.0/8, ::1,
   * localhost) always are; every other registry uses TLS.
   * @default []
   */
  readonly insecure?: readonly string[]
  /** A PEM file of CA certificates trusted next to the system's. */
  readonly caFile?: string
  /** Directory holding `config.json` (auths, credsStore, credHelpers). @default $DOCKER_CONFIG, else ~/.docker */
  readonly configDir?: string
  /** Credentials per registry host (`docker.io`, `127.0.0.1:5000`), used before config.json. */
  readonly auths?: Readonly<Record<string, RegistryCredentials>>
  /** Attempts after the first for a request that fails with 5xx, 429 or a dropped connection. @default 4 */
  readonly retries?: number
  /** Blob downloads in flight at once, over the whole build. @default 4 */
  readonly concurrency?: number
}

/** {@link RegistryOptions} with every default applied and the environment already read. */
export interface RegistryConfig {
  readonly mirrors: Readonly<Record<string, readonly string[]>>
  readonly insecure: readonly string[]
  readonly caFile?: string
  readonly configDir: string
  readonly auths: Readonly<Record<string, RegistryCredentials>>
  readonly retries: number
  readonly concurrency: number
  /** First backoff delay in ms (doubled per attempt). @default 200 */
  readonly backoffMs: number
  /** A connection silent this long (connecting, headers or body) counts as dropped and is retried. @default 30000 */
  readonly idleTimeoutMs?: number
  /**
   * Deadline of one request (connect, headers, body) for manifests, tokens and API calls; a blob
   * download's attempt gets this plus its remaining bytes at {@link minBytesPerSecond}. Past it:
   * REGISTRY_TIMEOUT, not retried (a server trickling bytes keeps the idle timeout from firing).
   * @default 120000
   */
  readonly deadlineMs?: number
  /** The slowest blob download rate waited for (see {@link deadlineMs}). @default 65536 (64 KiB/s: 1 GB in about 4.5 h) */
  readonly minBytesPerSecond?: number
  /** A 429/5xx whose Retry-After asks for a longer wait fails at once (REGISTRY_ERROR naming the wait). @default 30000 */
  readonly maxRetryAfterMs?: number
}
