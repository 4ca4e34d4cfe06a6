import { ErrorCodes, InvalidArgumentError } from '../errors.js'

/** The runtime type an option field must have (a script in JavaScript, or a cast, gets no compiler to say so). */
export type FieldType = 'string' | 'boolean' | 'number' | 'string|number' | 'string[]' | 'stage' | 'list' | 'object'

const SAYS: Record<FieldType, string> = {
  string: 'a string',
  boolean: 'a boolean',
  number: 'a number',
  'string|number': 'a string or a number',
  'string[]': 'an array of strings',
  stage: 'an image() builder or an image reference string',
  list: 'an array',
  object: 'an object',
}

export const WORD_FIELDS: Readonly<Record<string, FieldType>> = { expand: 'boolean', escapeToken: 'string' }

/** Checks each field of `opts` that is set against its type; `what` names the options in the message (`copy() option`). */
export function checkOptions(what: string, opts: unknown, fields: Readonly<Record<string, FieldType>>): void {
  if (opts === undefined) return
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what}s must be an object, got ${shown(opts)}`, { option: what, value: opts })
  }
  const o = opts as Record<string, unknown>
  for (const [name, type] of Object.entries(fields)) {
    const v = o[name]
    if (v === undefined || fits(v, type)) continue
    throw new InvalidArgumentError(ErrorCodes.INVALID_ARGUMENT, `${what} ${name} must be ${SAYS[type]}, got ${shown(v)}`, { option: name, value: v })
  }
}

function fits(v: unknown, type: FieldType): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string'
    case 'boolean':
      return typeof v === 'boolean'
    case 'number':
      return typeof v === 'number' && Number.isFinite(v)
    case 'string|number':
      return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string')
    case 'stage':
      // A builder from another copy of the package counts (load-script.ts checks the same way).
      return typeof v === 'string' || (!!v && typeof v === 'object' && typeof (v as { toStage?: unknown }).toStage === 'function')
    case 'list':
      return Array.isArray(v)
    case 'object':
      return !!v && typeof v === 'object' && !Array.isArray(v)
  }
}

/** The value as the message shows it: its type and, when short, itself. */
export function shown(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return typeof (v as { toStage?: unknown }).toStage === 'function' ? 'a builder' : 'an object'
  if (typeof v === 'function') return 'a function'
  const text = typeof v === 'string' ? JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v) : String(v)
  return `${typeof v} ${text}`
}
