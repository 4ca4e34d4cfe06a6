import { describe, expect, it } from 'vitest'
import { parseDockerignore, PatternMatcher } from '../../src/context/dockerignore.js'
import { BadPatternError, goClean, goMatch } from '../../src/context/glob.js'

const m = (patterns: string[], path: string): boolean => new PatternMatcher(patterns).matches(path)

describe('parseDockerignore (ignorefile.ReadAll)', () => {
  it('drops comments and blanks, trims, cleans, strips a leading /, keeps !', () => {
    const text = '\ufeff# comment\n\n  *.log  \n/build/\n!/build/keep.txt\n ! spaced \n a/../b \n./c\n  # not a comment\r\n/\n'
    expect(parseDockerignore(text)).toEqual(['*.log', 'build', '!build/keep.txt', '!spaced', 'b', 'c', '# not a comment', '/'])
  })
})

describe('PatternMatcher (MatchesOrParentMatches)', () => {
  it('matches * and ? within one segment only', () => {
    expect(m(['*.go'], 'a.go')).toBe(true)
    expect(m(['*.go'], 'dir/a.go')).toBe(false)
    expect(m(['a?c'], 'abc')).toBe(true)
    expect(m(['a?c'], 'a/c')).toBe(false)
    expect(m(['*/*.go'], 'dir/a.go')).toBe(true)
  })

  it('excludes everything under a matched directory', () => {
    expect(m(['docs'], 'docs/a/b.md')).toBe(true)
    expect(m(['dir/*'], 'dir/sub/file')).toBe(true)
    expect(m(['docs'], 'docsx')).toBe(false)
  })

  it('** spans any number of directories, including none', () => {
    expect(m(['**'], 'anything/at/all')).toBe(true)
    expect(m(['**/foo'], 'foo')).toBe(true)
    expect(m(['**/foo'], 'a/b/foo')).toBe(true)
    expect(m(['**/foo'], 'a/b/foo/bar')).toBe(true)
    expect(m(['**/foo'], 'a/xfoo')).toBe(false)
    expect(m(['foo/**'], 'foo/x/y')).toBe(true)
    expect(m(['dir/**/*.go'], 'dir/a.go')).toBe(true)
    expect(m(['dir/**/*.go'], 'dir/x/y/a.go')).toBe(true)
    expect(m(['dir/**/*.go'], 'other/a.go')).toBe(false)
    expect(m(['**/*.md'], 'a/b/c.md')).toBe(true)
    expect(m(['a/**/b'], 'a/b')).toBe(true)
  })

  it('later ! patterns re-include, later patterns win again', () => {
    expect(m(['*.md', '!README.md'], 'README.md')).toBe(false)
    expect(m(['*.md', '!README.md'], 'CHANGES.md')).toBe(true)
    expect(m(['docs', '!docs/keep.md'], 'docs/keep.md')).toBe(false)
    expect(m(['docs', '!docs/keep.md'], 'docs/other.md')).toBe(true)
    expect(m(['*.md', '!README.md', 'README.md'], 'README.md')).toBe(true)
    expect(new PatternMatcher(['a', '!b']).exclusions).toBe(true)
    expect(new PatternMatcher(['a']).exclusions).toBe(false)
  })

  it('cleans patterns and handles escapes and classes', () => {
    expect(m(['./a/../b/'], 'b')).toBe(true)
    expect(m(['\\*.txt'], '*.txt')).toBe(true)
    expect(m(['\\*.txt'], 'a.txt')).toBe(false)
    expect(m(['[a-c].txt'], 'b.txt')).toBe(true)
    expect(m(['[^a-c].txt'], 'b.txt')).toBe(false)
    expect(m(['[^a-c].txt'], 'x.txt')).toBe(true)
    expect(m(['a.b'], 'axb')).toBe(false) // '.' is literal
    expect(m(['a+(b)'], 'a+(b)')).toBe(true)
  })

  it('rejects "!" alone and malformed patterns', () => {
    expect(() => new PatternMatcher(['!'])).toThrow(/illegal exclusion pattern/)
    expect(() => new PatternMatcher(['['])).toThrow(/invalid ignore pattern/)
    expect(() => new PatternMatcher(['a\\'])).toThrow(/invalid ignore pattern/)
  })
})

describe('goMatch (filepath.Match) and goClean', () => {
  it('follows Go', () => {
    expect(goMatch('*', 'abc')).toBe(true)
    expect(goMatch('*', 'a/b')).toBe(false)
    expect(goMatch('a*b*c', 'axxbyyc')).toBe(true)
    expect(goMatch('a*', '.a')).toBe(false)
    expect(goMatch('*', '.hidden')).toBe(true)
    expect(() => goMatch('[a-]', 'a')).toThrow(BadPatternError)
    expect(() => goMatch('[a-]', 'x')).toThrow(BadPatternError)
    expect(goMatch('[\\]]', ']')).toBe(true)
    expect(goMatch('a\\*', 'a*')).toBe(true)
    expect(goMatch('ä?', 'äö')).toBe(true)
    expect(goClean('a//b/./c/..')).toBe('a/b')
    expect(goClean('/../x')).toBe('/x')
    expect(goClean('../x/')).toBe('../x')
    expect(goClean('')).toBe('.')
  })
})
