/**
 * Where `$VAR` expansion happens (the one place this is decided; builder, importer, executors and
 * printer follow it).
 *
 * Words are stored in the IR **as written**. A spec whose words are to be expanded carries
 * `expand: true` (ARG carries it per argument, since a `--build-arg` override replaces a default with a
 * literal value). Without the marker every word is literal: that is the builder API's default,
 * where TypeScript users pass values, not shell words.
 *
 * Two moments, as in BuildKit's Dockerfile frontend:
 * - **Lowering time** (src/dockerfile/import): words BuildKit expands from the ARGs in scope before any
 *   image is known: `FROM`'s image reference (global ARGs only), `--platform`, `COPY --from`,
 *   `RUN --mount`'s `from` and its type, mode and size options. They reach the IR already expanded;
 *   nothing marks them.
 * - **Solve time** (the executors, through src/ops/expand-spec): words expanded against the
 *   stage's environment — the base image's ENV, then every ENV and ARG in scope, ENV winning over an
 *   ARG of the same name — because `WORKDIR $HOME` with HOME from the base image's ENV is only known
 *   once the base config is: ENV (keys and values), LABEL (keys and values), ARG defaults, WORKDIR,
 *   USER, VOLUME, STOPSIGNAL, EXPOSE (expanded, then split into words), COPY/ADD sources, dest,
 *   `--chown`, `--chmod`, `--exclude`, heredoc file content (quotes left alone), and `RUN --mount`'s
 *   `target`, `source`, `id` and `env` (RunSpec `expand` marks those, never the command).
 * - **Never**: RUN (the container's shell expands it), CMD, ENTRYPOINT, HEALTHCHECK, SHELL,
 *   MAINTAINER and ONBUILD (a trigger is expanded when it runs in the child, against the child's env).
 *
 * Consequences:
 * - Vertex keys hash the raw words and the marker, so they are deterministic before anything runs.
 * - Cache keys, history `created_by` and the config hold the expanded values: an executor first turns
 *   the spec into a literal one (marker dropped) and works on that, so `COPY $SRC /d` with SRC=a
 *   shares its layer cache with `COPY a /d`.
 * - Validation that needs the value (EXPOSE ports, `--chmod` octal, STOPSIGNAL names) happens in the
 *   builder for literal words and again in the executor after expansion.
 * - A printer writes a marked word back verbatim (so `$VAR` is where the source had it) and escapes
 *   `$` and `\` in unmarked (literal) words, which Docker would otherwise expand.
 */
export interface Expandable {
  /** The spec's words are shell words expanded against the stage's env at solve time. Absent: literal. */
  readonly expand?: true
  /** The Dockerfile's escape character when a `# escape=` directive made it a backtick. @default '\\' */
  readonly escapeToken?: '`'
}
