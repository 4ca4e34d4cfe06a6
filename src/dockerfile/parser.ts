/**
 * The Dockerfile parser: BuildKit's `frontend/dockerfile/parser.Parse`, rule for rule (directives
 * only at the top, comments dropped even inside continuations, continuation lines appended
 * untrimmed, blank continuation lines skipped with a warning, heredoc bodies read after the line),
 * producing the AST of `ast.ts` with positions, raw text and comments kept for printing.
 */
import type { Comment, Dockerfile, EscapeToken, Flag, Heredoc, Instruction, InstructionKeyword, ParseOptions, ParseWarning } from './ast.js'
import { INSTRUCTION_KEYWORDS } from './ast.js'
import { ErrorCodes, ImagesmithError, type ErrorCode } from '../errors.js'
import { LineError, parseLogicalLine, type ParsedLine } from './parser-args.js'
import { checkFlags, suggest } from './parser-flags.js'
import { heredocsFromLine } from './parser-heredoc.js'
import {
  DirectiveError,
  DirectiveScanner,
  MAX_LINE_BYTES,
  goTrimSpace,
  isComment,
  isEmptyContinuationLine,
  leadingSpace,
  lineTooLong,
  splitLines,
  trimContinuation,
  type PhysicalLine,
} from './parser-lines.js'

/** Where a piece of the logical line came from, to turn an offset back into line and column. */
interface Segment {
  readonly at: number
  readonly line: number
  readonly column: number
}

/**
 * Parses a Dockerfile as BuildKit does. Throws `DOCKERFILE_SYNTAX` (and, when strict,
 * `UNKNOWN_INSTRUCTION`) as an {@link ImagesmithError} whose details hold `line`, `column` and
 * the offending physical line as `text`.
 */
export function parseDockerfile(input: string | Uint8Array, options: ParseOptions = {}): Dockerfile {
  const strict = options.strict ?? true
  const filename = options.filename ?? 'Dockerfile'
  let text = typeof input === 'string' ? input : new TextDecoder('utf-8', { ignoreBOM: true }).decode(input)
  const bom = text.startsWith('\uFEFF')
  if (bom) text = text.slice(1)
  const lines = splitLines(text)

  const fail = (code: ErrorCode, message: string, line: number, column: number, extra: Record<string, unknown> = {}): never => {
    throw locatedError(filename, lines, code, message, line, column, extra)
  }
  const readLine = (index: number): PhysicalLine => {
    const l = lines[index]!
    if (lineTooLong(l)) fail(ErrorCodes.DOCKERFILE_SYNTAX, `dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, index + 1, 1)
    return l
  }

  const directives = new DirectiveScanner()
  let escape: EscapeToken = '\\'
  const instructions: Instruction[] = []
  const comments: Comment[] = []
  const warnings: ParseWarning[] = []
  let prevComments: string[] = []

  let li = 0
  while (li < lines.length) {
    const raw = readLine(li).text
    const lineNo = li + 1
    const comment = isComment(raw)
    if (comment) {
      const t = commentText(raw)
      if (t === '') prevComments = []
      else prevComments.push(t)
    }
    const indent = leadingSpace(raw)
    const stripped = raw.slice(indent)
    let directive
    try {
      directive = directives.scan(stripped, lineNo)
    } catch (e) {
      if (!(e instanceof DirectiveError)) throw e
      return fail(ErrorCodes.DOCKERFILE_SYNTAX, e.message, lineNo, indent + 1)
    }
    if (directive) {
      prevComments.pop()
      if (directive.name === 'escape') {
        if (directive.value !== '\\' && directive.value !== '`') {
          fail(ErrorCodes.DOCKERFILE_SYNTAX, `invalid escape token '${directive.value}' does not match \` or \\`, lineNo, indent + 1)
        }
        escape = directive.value as EscapeToken
      }
    } else if (comment) {
      comments.push({ text: commentText(raw), raw, line: lineNo, inContinuation: false })
    }
    li++

    const first = trimContinuation(comment ? '' : stripped, escape)
    if (first.ends && first.text.length === 0) continue
    const startLine = lineNo
    const startColumn = indent + 1
    const segments: Segment[] = [{ at: 0, line: startLine, column: startColumn }]
    let logical = first.text
    let ends = first.ends
    let emptyContinuation = false
    while (!ends && li < lines.length) {
      const r = readLine(li).text
      li++
      if (isComment(r)) {
        comments.push({ text: commentText(r), raw: r, line: li, inContinuation: true })
        continue
      }
      if (isEmptyContinuationLine(r)) {
        emptyContinuation = true
        continue
      }
      const next = trimContinuation(r, escape)
      ends = next.ends
      segments.push({ at: logical.length, line: li, column: 1 })
      logical += next.text
    }
    if (emptyContinuation) {
      warnings.push({ message: `Empty continuation line found in: ${logical}`, line: li })
    }
    const at = (offset: number): { line: number; column: number } => positionOf(segments, offset)

    let parsed: ParsedLine
    try {
      parsed = parseLogicalLine(logical, escape)
    } catch (e) {
      if (!(e instanceof LineError)) throw e
      const p = at(e.offset)
      return fail(ErrorCodes.DOCKERFILE_SYNTAX, e.message, p.line, p.column)
    }
    if (strict) checkStrict(parsed, at, fail)

    const heredocs: Heredoc[] = []
    const target = parsed.keywordRaw.toLowerCase() === 'onbuild' && parsed.child ? parsed.child : parsed
    const takesHeredoc = ['run', 'copy', 'add'].includes(target.keywordRaw.toLowerCase()) && !target.json
    if (takesHeredoc && logical.includes('<<')) {
      let heads
      try {
        heads = heredocsFromLine(logical)
      } catch (e) {
        return fail(ErrorCodes.DOCKERFILE_SYNTAX, e instanceof Error ? e.message : String(e), startLine, startColumn)
      }
      for (const head of heads) {
        const bodyStart = li + 1
        let content = ''
        let terminated = false
        while (li < lines.length) {
          const l = readLine(li)
          li++
          const candidate = head.chomp ? l.text.replace(/^\t+/, '') : l.text
          if (candidate === head.name) {
            terminated = true
            break
          }
          content += l.text + l.end
        }
        if (!terminated) fail(ErrorCodes.DOCKERFILE_SYNTAX, 'unterminated heredoc', startLine, startColumn, { heredoc: head.name })
        heredocs.push({
          ...head,
          content,
          range: { start: { line: bodyStart, column: 1 }, end: { line: li, column: lines[li - 1]!.text.length + 1 } },
        })
      }
    }

    const last = lines[li - 1]!
    const range = { start: { line: startLine, column: startColumn }, end: { line: li, column: last.text.length + 1 } }
    const source = text.slice(lines[startLine - 1]!.offset, last.offset + last.text.length)
    instructions.push(toInstruction(parsed, logical, source, range, heredocs, prevComments))
    prevComments = []
  }

  if (instructions.length === 0) fail(ErrorCodes.DOCKERFILE_SYNTAX, 'file with no instructions', Math.max(1, lines.length), 1)

  return Object.freeze({
    directives: Object.freeze(directives.directives),
    escapeToken: escape,
    instructions: Object.freeze(instructions),
    comments: Object.freeze(comments),
    warnings: Object.freeze(warnings),
    bom,
    crlf: text.includes('\r\n'),
  })
}

/** A comment's text: what follows `#`, blanks trimmed. */
function commentText(raw: string): string {
  return goTrimSpace(raw.slice(leadingSpace(raw) + 1))
}

function positionOf(segments: readonly Segment[], offset: number): { line: number; column: number } {
  let lo = 0
  let hi = segments.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (segments[mid]!.at <= offset) lo = mid
    else hi = mid - 1
  }
  const s = segments[lo]!
  return { line: s.line, column: s.column + offset - s.at }
}

type Fail = (code: ErrorCode, message: string, line: number, column: number, extra?: Record<string, unknown>) => never

/** Unknown instructions and bad flags, at every ONBUILD level. */
function checkStrict(parsed: ParsedLine, at: (offset: number) => { line: number; column: number }, fail: Fail): void {
  for (let p: ParsedLine | undefined = parsed; p; p = p.child) {
    const keyword = p.keywordRaw.toUpperCase()
    if (!p.known) {
      const hint = suggest(p.keywordRaw, INSTRUCTION_KEYWORDS, false)
      const pos = at(p.keywordOffset)
      fail(ErrorCodes.UNKNOWN_INSTRUCTION, `unknown instruction: ${p.keywordRaw}${hint ? ` (did you mean ${hint}?)` : ''}`, pos.line, pos.column, {
        instruction: p.keywordRaw,
      })
    }
    const flags = p.flags.map(toFlag)
    const none = keyword === 'HEALTHCHECK' && (p.args[0] ?? '').toUpperCase() === 'NONE'
    const problem = checkFlags(keyword, flags, none)
    if (problem) {
      const pos = at(p.flags[problem.index]!.offset)
      fail(ErrorCodes.DOCKERFILE_SYNTAX, problem.message, pos.line, pos.column, { flag: flags[problem.index]!.raw })
    }
  }
}

function toFlag(f: { word: string; raw: string }): Flag {
  const eq = f.word.indexOf('=')
  const name = (eq < 0 ? f.word : f.word.slice(0, eq)).slice(2)
  return Object.freeze({ name, value: eq < 0 ? undefined : f.word.slice(eq + 1), word: f.word, raw: f.raw })
}

/** The frozen AST node; ONBUILD's trigger shares the range, source, heredocs and comments. */
function toInstruction(
  parsed: ParsedLine,
  original: string,
  source: string,
  range: Instruction['range'],
  heredocs: readonly Heredoc[],
  comments: readonly string[],
): Instruction {
  // Innermost first, so nested ONBUILDs need no recursion.
  const chain: ParsedLine[] = []
  for (let p: ParsedLine | undefined = parsed; p; p = p.child) chain.push(p)
  let inner: Instruction | undefined
  const frozenHeredocs = Object.freeze(heredocs.map((h) => Object.freeze(h)))
  const frozenComments = Object.freeze([...comments])
  for (let i = chain.length - 1; i >= 0; i--) {
    const p = chain[i]!
    const upper = p.keywordRaw.toUpperCase()
    const node: Instruction = {
      // Not strict, an unknown word passes through upper-cased (see ParseOptions.strict).
      keyword: upper as InstructionKeyword,
      keywordRaw: p.keywordRaw,
      original: i === 0 ? original : original.slice(p.keywordOffset),
      source,
      range,
      flags: Object.freeze(p.flags.map(toFlag)),
      args: Object.freeze([...p.args]),
      rest: p.rest,
      json: p.json,
      ...(p.pairs ? { pairs: Object.freeze(p.pairs.map((kv) => Object.freeze(kv))) } : {}),
      ...(inner ? { onbuild: inner } : {}),
      heredocs: i === 0 || i === 1 ? frozenHeredocs : Object.freeze([]),
      comments: frozenComments,
    }
    inner = Object.freeze(node)
  }
  return inner!
}

/** An error that names the line and column and quotes the line. */
function locatedError(
  filename: string,
  lines: readonly PhysicalLine[],
  code: ErrorCode,
  message: string,
  line: number,
  column: number,
  extra: Record<string, unknown>,
): ImagesmithError {
  const text = lines[line - 1]?.text ?? ''
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text
  return new ImagesmithError(code, `${filename}:${line}:${column}: ${message}\n${String(line).padStart(5)} | ${shown}`, {
    ...extra,
    line,
    column,
    text,
    reason: message,
    file: filename,
  })
}
