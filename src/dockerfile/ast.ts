/**
 * The Dockerfile syntax tree, shaped after BuildKit's `frontend/dockerfile/parser.Node` (one
 * instruction per logical line, its flags and argument words as BuildKit's line parsers split them)
 * plus what a printer and a code generator need to write the file back: the keyword as written,
 * the exact source text and position, the raw text of every flag, the comments before each
 * instruction, and the heredoc bodies.
 *
 * Nothing here is expanded: `$VAR` stays as written. Expansion happens later, with
 * `src/shell/expand.ts`, against build args or the image's ENV (see the lowering).
 */
import type { EscapeToken } from '../shell/expand.js'

/** A 1-based line and column (columns count UTF-16 code units from the start of the physical line). */
export interface SourcePosition {
  readonly line: number
  readonly column: number
}

/**
 * Where a node sits in the file. `start` is its first character; `end.line` is the last physical
 * line it consumed (blank and comment lines inside a continuation and heredoc bodies included),
 * `end.column` is one past the last character of that line.
 */
export interface SourceRange {
  readonly start: SourcePosition
  readonly end: SourcePosition
}

export type { EscapeToken }

/** A parser directive from the top of the file: `# syntax=…`, `# escape=…`, `# check=…`. */
export interface Directive {
  /** Lower-cased: the key is case-insensitive. */
  readonly name: 'syntax' | 'escape' | 'check'
  readonly value: string
  /** The whole line as written, e.g. `# syntax=docker/dockerfile:1`. */
  readonly text: string
  readonly line: number
}

/** A comment line (`#` as the first non-blank character), directives excluded. */
export interface Comment {
  /** The text after `#`, trimmed, as BuildKit keeps it in `PrevComment`. */
  readonly text: string
  /** The whole physical line as written (indentation and `#` included). */
  readonly raw: string
  readonly line: number
  /** True when the comment sits inside a continued instruction (BuildKit drops these). */
  readonly inContinuation: boolean
}

/** A `--name[=value]` word at the start of an instruction's arguments. */
export interface Flag {
  /** The flag name without `--`: `from`, `chown`, `mount`, `start-interval`, … */
  readonly name: string
  /**
   * The value after the first `=`; undefined for a bare `--link`. Quotes removed, escapes applied.
   * As under BuildKit, which reads flags byte by byte, a non-ASCII character arrives as its UTF-8
   * bytes taken as Latin-1 (`--chown=jürgen` → `jÃ¼rgen`): print `raw`, never this, back.
   */
  readonly value: string | undefined
  /** The word as BuildKit hands it to its flag parser (`--from=build`): quotes removed, escapes applied. */
  readonly word: string
  /** The word exactly as written in the logical line, quotes and escapes kept (`--chown="a b"`). */
  readonly raw: string
}

/** A heredoc attached to a RUN, COPY or ADD (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`). */
export interface Heredoc {
  /** The delimiter with its quotes removed. */
  readonly name: string
  /** The file descriptor before `<<`; 0 when none was written. */
  readonly fileDescriptor: number
  /** False when any part of the delimiter was quoted: the body is then not expanded. */
  readonly expand: boolean
  /** True for `<<-`: leading tabs are stripped (BuildKit strips them when the body is used). */
  readonly chomp: boolean
  /** The body exactly as in the file, each line with its newline, terminator excluded, tabs kept. */
  readonly content: string
  /** The lines the body and its terminator occupy. */
  readonly range: SourceRange
}

/** The instructions BuildKit's Dockerfile frontend knows, upper case. */
export const INSTRUCTION_KEYWORDS = Object.freeze([
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const)

export type InstructionKeyword = (typeof INSTRUCTION_KEYWORDS)[number]

/** One `key=value` (or old-form `key value`) of an ENV or LABEL, raw: quotes and escapes kept. */
export interface KeyValue {
  readonly key: string
  readonly value: string
  /** `=` for `key=value`, empty for the old `ENV key value` form. */
  readonly separator: '=' | ''
}

/**
 * One instruction (one logical line). The fields mirror BuildKit's node: `args` are the values of
 * its `Next` chain, `json` its `json` attribute, `flags` its `Flags`, `original` its `Original`.
 */
export interface Instruction {
  /** Upper case: `RUN`. Words that are not instructions are rejected (`UNKNOWN_INSTRUCTION`). */
  readonly keyword: InstructionKeyword
  /** The keyword as written: `run`, `Run`, `RUN`. */
  readonly keywordRaw: string
  /**
   * The logical line: continuations joined as BuildKit joins them (escape and trailing blanks
   * removed, following lines appended untrimmed, comment and blank lines dropped).
   */
  readonly original: string
  /** The physical lines of the instruction exactly as in the file (heredoc bodies included), joined with `\n`. */
  readonly source: string
  readonly range: SourceRange
  /** The flags in order, `--` ends them and is not listed. */
  readonly flags: readonly Flag[]
  /**
   * The argument words as BuildKit's line parser for this keyword yields them: JSON-decoded
   * elements in exec form; otherwise the verbatim rest (RUN/CMD/ENTRYPOINT/SHELL, USER, WORKDIR,
   * STOPSIGNAL, MAINTAINER), whitespace-split words (FROM, EXPOSE, COPY/ADD/VOLUME), quote-aware
   * words (ARG), key/value/separator triples (ENV, LABEL: see `pairs`), the type word then the
   * command (HEALTHCHECK). Empty for ONBUILD (see `onbuild`).
   */
  readonly args: readonly string[]
  /** The text after the keyword and the flags, trimmed, as written. */
  readonly rest: string
  /** True for the JSON (exec) form of RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, COPY, ADD, VOLUME. */
  readonly json: boolean
  /** ENV and LABEL only: `args` as pairs. */
  readonly pairs?: readonly KeyValue[]
  /** ONBUILD only: the trigger instruction (same range and source as its ONBUILD). */
  readonly onbuild?: Instruction
  /**
   * Bodies of the heredocs the line opens, in order (RUN, COPY, ADD in shell form). For
   * `ONBUILD RUN <<EOF` both the ONBUILD and its trigger carry them.
   */
  readonly heredocs: readonly Heredoc[]
  /**
   * The comments right before the instruction, `#` and blanks stripped, collected as BuildKit's
   * `PrevComment`: a bare `#` line clears the list; blank lines do not. (BuildKit strips only the
   * first character of the raw line, so an indented `  # x` reads `# x` there; here it reads `x`.
   * BuildKit uses these only for lint and outline, never for the image.)
   */
  readonly comments: readonly string[]
}

/** A non-fatal remark, as BuildKit's parser warns (e.g. an empty continuation line). */
export interface ParseWarning {
  readonly message: string
  readonly line: number
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  readonly directives: readonly Directive[]
  /** The escape character in force (`# escape=`), `\` by default. */
  readonly escapeToken: EscapeToken
  readonly instructions: readonly Instruction[]
  /** Every comment line of the file in order, directives excluded, so printers can keep them all. */
  readonly comments: readonly Comment[]
  readonly warnings: readonly ParseWarning[]
  /** True when the input started with a UTF-8 byte order mark (dropped, as BuildKit does). */
  readonly bom: boolean
  /** True when the input used CRLF line ends (they are read as LF, as BuildKit reads them). */
  readonly crlf: boolean
}

/** Options of `parseDockerfile`. */
export interface ParseOptions {
  /** Shown in error messages in place of `Dockerfile`. */
  readonly filename?: string
  /**
   * Apply the checks of BuildKit's instruction stage that need nothing but the text: a word that
   * is no instruction is `UNKNOWN_INSTRUCTION`, an unknown, repeated or malformed flag is
   * `DOCKERFILE_SYNTAX` (also inside ONBUILD, whose trigger BuildKit would only reject when the
   * image is used as a base). `false` gives BuildKit's bare parser output, as its parser tests
   * expect it: unknown words are kept (upper-cased in `keyword`, with one empty argument) and
   * flags are not checked.
   * @default true
   */
  readonly strict?: boolean
}
