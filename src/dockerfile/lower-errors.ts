import { ErrorCodes, ImagesmithError, type ErrorCode } from '../errors.js'
import type { Instruction } from './ast.js'

/** Where an instruction is, for error details: line and column of its start and the logical line. */
export function locate(inst: Instruction): { line: number; column: number; text: string } {
  return { line: inst.range.start.line, column: inst.range.start.column, text: inst.original }
}

/** An error about one instruction, naming its line and column and quoting it. */
export function instructionError(inst: Instruction, code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): ImagesmithError {
  const at = locate(inst)
  return new ImagesmithError(code, `line ${at.line}:${at.column}: ${message}\n  ${at.text}`, { ...details, ...at }, cause === undefined ? undefined : { cause })
}

export function unsupported(inst: Instruction, feature: string, why: string): ImagesmithError {
  return instructionError(inst, ErrorCodes.UNSUPPORTED_INSTRUCTION, `${feature} is not supported: ${why}`, { feature })
}

/** Runs a lowering step; a typed error without a location gets the instruction's. */
export function atInstruction<T>(inst: Instruction, fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (e instanceof ImagesmithError && e.details.line === undefined) throw instructionError(inst, e.code, e.message, { ...e.details }, e)
    throw e
  }
}
