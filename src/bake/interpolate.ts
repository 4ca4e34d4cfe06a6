/** Why a template could not be expanded; the caller says where it was. */
export class TemplateError extends Error {
  constructor(
    message: string,
    readonly variable?: string,
  ) {
    super(message)
  }
}

/** No expanded string grows past this: defaults that nest `${A}${A}` would otherwise double per level. */
export const MAX_TEMPLATE_LENGTH = 1 << 20

const isIdentStart = (c: string | undefined): boolean => !!c && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c === '_')
const isIdent = (c: string | undefined): boolean => isIdentStart(c) || (!!c && ((c >= '0' && c <= '9') || c === '-'))

/**
 * Expands a string of a JSON bake file as HCL's JSON syntax does (buildx reads JSON files through HCL):
 * `${NAME}` is the variable's value, `$${` and `%%{` are a literal `${` and `%{`. Anything else HCL would
 * evaluate there (functions, operators, `%{if}` directives) is refused, never passed through as text.
 * One left-to-right pass; `lookup` throws for an undefined name.
 */
export function interpolate(s: string, lookup: (name: string) => string): string {
  if (!s.includes('{')) return s
  let out = ''
  let i = 0
  while (i < s.length) {
    const c = s[i]!
    if ((c === '$' || c === '%') && s[i + 1] === c && s[i + 2] === '{') {
      out += `${c}{`
      i += 3
    } else if (c === '%' && s[i + 1] === '{') {
      throw new TemplateError(`template directives (%{…}) are not supported in JSON bake files: ${JSON.stringify(clip(s, i))}`)
    } else if (c === '$' && s[i + 1] === '{') {
      let j = i + 2
      while (s[j] === ' ' || s[j] === '~') j++
      const start = j
      if (!isIdentStart(s[j])) throw unsupported(s, i)
      while (isIdent(s[j])) j++
      const name = s.slice(start, j)
      while (s[j] === ' ' || s[j] === '~') j++
      if (s[j] !== '}') throw unsupported(s, i)
      out += lookup(name)
      i = j + 1
    } else {
      out += c
      i++
    }
    if (out.length > MAX_TEMPLATE_LENGTH) throw new TemplateError(`expanded string longer than ${MAX_TEMPLATE_LENGTH} characters`)
  }
  return out
}

function clip(s: string, at: number): string {
  const end = s.indexOf('}', at)
  return s.slice(at, end < 0 ? Math.min(s.length, at + 40) : Math.min(end + 1, at + 80))
}

function unsupported(s: string, at: number): TemplateError {
  return new TemplateError(`only \${NAME} is supported in JSON bake files, not the expression ${JSON.stringify(clip(s, at))}`)
}
