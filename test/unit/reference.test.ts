/**
 * Test vectors from distribution/reference (reference_test.go TestReferenceParse, normalize_test.go
 * TestValidateReferenceName, TestValidateRemoteName, TestParseRepositoryInfo, TestNormalizedSplitHostname).
 */
import { describe, expect, it } from 'vitest'
import { ErrorCodes } from '../../src/errors.js'
import { parseImageName, parseReference, parseReferenceExact } from '../../src/reference/reference.js'

const F64 = 'f'.repeat(64)
const F128 = 'f'.repeat(128)

function rejects(fn: () => unknown, part?: string): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(err, 'expected an error').toMatchObject({ code: ErrorCodes.INVALID_REFERENCE })
  if (part) expect((err as { details: { part: string } }).details.part).toBe(part)
}

describe('parseReferenceExact (distribution/reference Parse)', () => {
  // [input, name (domain/path), domain, tag, digest]
  const valid: [string, string, string, string?, string?][] = [
    ['test_com', 'test_com', ''],
    ['test.com:tag', 'test.com', '', 'tag'],
    ['test.com:5000', 'test.com', '', '5000'],
    ['test.com/repo:tag', 'test.com/repo', 'test.com', 'tag'],
    ['test:5000/repo', 'test:5000/repo', 'test:5000'],
    ['test:5000/repo:tag', 'test:5000/repo', 'test:5000', 'tag'],
    [`test:5000/repo@sha256:${F64}`, 'test:5000/repo', 'test:5000', undefined, `sha256:${F64}`],
    [`test:5000/repo:tag@sha256:${F64}`, 'test:5000/repo', 'test:5000', 'tag', `sha256:${F64}`],
    ['lowercase:Uppercase', 'lowercase', '', 'Uppercase'],
    [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, `${'a/'.repeat(127)}a`, 'a', 'tag-puts-this-over-max'],
    ['sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com'],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com', 'some-long-tag'],
    ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io/test.example.com/my-app', 'b.gcr.io', 'test.example.com'],
    ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com/myimage', 'xn--n3h.com', 'xn--n3h.com'],
    [`xn--7o8h.com/myimage:xn--7o8h.com@sha512:${F128}`, 'xn--7o8h.com/myimage', 'xn--7o8h.com', 'xn--7o8h.com', `sha512:${F128}`],
    ['foo_bar.com:8080', 'foo_bar.com', '', '8080'],
    ['foo/foo_bar.com:8080', 'foo/foo_bar.com', 'foo', '8080'],
    ['192.168.1.1', '192.168.1.1', ''],
    ['192.168.1.1:tag', '192.168.1.1', '', 'tag'],
    ['192.168.1.1:5000', '192.168.1.1', '', '5000'],
    ['192.168.1.1/repo', '192.168.1.1/repo', '192.168.1.1'],
    ['192.168.1.1:5000/repo', '192.168.1.1:5000/repo', '192.168.1.1:5000'],
    ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000/repo', '192.168.1.1:5000', '5050'],
    ['[2001:db8::1]/repo', '[2001:db8::1]/repo', '[2001:db8::1]'],
    ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]/repo', '[2001:db8:1:2:3:4:5:6]', 'tag'],
    ['[2001:db8::1]:5000/repo', '[2001:db8::1]:5000/repo', '[2001:db8::1]:5000'],
    ['[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'tag'],
    [`[2001:db8::1]:5000/repo@sha256:${F64}`, '[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', undefined, `sha256:${F64}`],
    [`[2001:db8::1]:5000/repo:tag@sha256:${F64}`, '[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'tag', `sha256:${F64}`],
    ['[2001:db8::]:5000/repo', '[2001:db8::]:5000/repo', '[2001:db8::]:5000'],
    ['[::1]:5000/repo', '[::1]:5000/repo', '[::1]:5000'],
  ]
  it.each(valid)('parses %s', (input, name, domain, tag, digest) => {
    const r = parseReferenceExact(input)
    expect(r.domain ? `${r.domain}/${r.path}` : r.path).toBe(name)
    expect(r.domain).toBe(domain)
    expect(r.tag).toBe(tag)
    expect(r.digest).toBe(digest)
  })

  const invalid: [string, string][] = [
    ['', 'name'],
    [':justtag', 'name'],
    [`@sha256:${F64}`, 'name'],
    ['repo@sha256:ffffffffffffffffffffffffffffffffff', 'digest'],
    [`validname@invaliddigest:${F64}`, 'digest'],
    ['Uppercase:tag', 'repository'],
    ['test:5000/Uppercase/lowercase:tag', 'repository'],
    [`${'a/'.repeat(128)}a:tag`, 'name'],
    ['aa/asdf$$^/aa', 'repository'],
    ['[2001:db8::1]', 'repository'],
    ['[2001:db8::1]:5000', 'repository'],
    ['[2001:db8::1]:tag', 'repository'],
    ['[fe80::1%eth0]:5000/repo', 'domain'],
    ['[fe80::1%@invalidzone]:5000/repo', 'tag'],
  ]
  it.each(invalid)('refuses %j', (input, part) => rejects(() => parseReferenceExact(input), part))
})

describe('parseReference (ParseNormalizedNamed + default tag)', () => {
  const validNames = [
    'docker/docker', 'library/debian', 'debian', 'docker.io/docker/docker', 'docker.io/library/debian', 'docker.io/debian',
    'index.docker.io/docker/docker', 'index.docker.io/library/debian', 'index.docker.io/debian', '127.0.0.1:5000/docker/docker',
    '127.0.0.1:5000/library/debian', '127.0.0.1:5000/debian', '192.168.0.1', '192.168.0.1:80', '192.168.0.1:8/debian',
    '192.168.0.2:25000/debian', 'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', '[fc00::1]:5000/docker',
    '[fc00::1]:5000/docker/docker', '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    'docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', 'Docker/docker', 'DOCKER/docker',
    // TestValidateRemoteName
    'docker-rules/docker', 'docker---rules/docker', 'doc/docker', 'd/docker', 'jess/t', 'dock__er/docker',
  ]
  it.each(validNames)('accepts %s', (n) => expect(() => parseReference(n)).not.toThrow())

  const invalidNames = [
    'https://github.com/docker/docker', 'docker/Docker', '-docker', '-docker/docker', '-docker.io/docker/docker', 'docker///docker',
    'docker.io/docker/Docker', 'docker.io/docker///docker', '[fc00::1]', '[fc00::1]:5000', 'fc00::1:5000/debian',
    '[fe80::1%eth0]:5000/debian', '[2001:db8:3:4::192.0.2.33]:5000/debian',
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    // TestValidateRemoteName
    'docker-/docker', '-docker-/docker', '____/____', '_docker/_docker', 'dock..er/docker', 'dock_.er/docker', 'dock-.er/docker', 'docker/',
    `${'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_'.repeat(4)}/docker`,
  ]
  it.each(invalidNames)('refuses %s', (n) => rejects(() => parseReference(n)))

  // [familiar, full name, domain, path, other spellings]
  const repos: [string, string, string, string, string[]][] = [
    ['fooo/bar', 'docker.io/fooo/bar', 'docker.io', 'fooo/bar', ['index.docker.io/fooo/bar']],
    ['ubuntu', 'docker.io/library/ubuntu', 'docker.io', 'library/ubuntu', ['library/ubuntu']],
    ['nonlibrary/ubuntu', 'docker.io/nonlibrary/ubuntu', 'docker.io', 'nonlibrary/ubuntu', []],
    ['other/library', 'docker.io/other/library', 'docker.io', 'other/library', []],
    ['127.0.0.1:8000/private/moonbase', '127.0.0.1:8000/private/moonbase', '127.0.0.1:8000', 'private/moonbase', []],
    ['127.0.0.1:8000/privatebase', '127.0.0.1:8000/privatebase', '127.0.0.1:8000', 'privatebase', []],
    ['example.com/private/moonbase', 'example.com/private/moonbase', 'example.com', 'private/moonbase', []],
    ['example.com:8000/privatebasee', 'example.com:8000/privatebasee', 'example.com:8000', 'privatebasee', []],
    ['ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base', 'docker.io', 'library/ubuntu-12.04-base', ['index.docker.io/library/ubuntu-12.04-base']],
    ['foo', 'docker.io/library/foo', 'docker.io', 'library/foo', ['docker.io/foo']],
    ['library/foo/bar', 'docker.io/library/foo/bar', 'docker.io', 'library/foo/bar', []],
    ['store/foo/bar', 'docker.io/store/foo/bar', 'docker.io', 'store/foo/bar', []],
    ['Foo/bar', 'Foo/bar', 'Foo', 'bar', []],
    ['FOO/bar', 'FOO/bar', 'FOO', 'bar', []],
  ]
  it.each(repos)('normalises %s', (familiar, full, domain, path, others) => {
    for (const spelling of [familiar, full, ...others]) {
      const r = parseReference(spelling)
      expect(r).toMatchObject({ domain, path, name: full, tag: 'latest', full: `${full}:latest`, familiar: `${familiar}:latest` })
    }
  })

  it.each([
    ['test.com/foo', 'test.com', 'foo'],
    ['test_com/foo', 'docker.io', 'test_com/foo'],
    ['docker/migrator', 'docker.io', 'docker/migrator'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'],
    ['foo', 'docker.io', 'library/foo'],
    ['xn--n3h.com/foo', 'xn--n3h.com', 'foo'],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
    ['docker.io/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'],
    ['localhost/foo', 'localhost', 'foo'],
    ['localhost:5000/a/b:tag', 'localhost:5000', 'a/b'],
  ])('splits %s into domain %s and path %s', (input, domain, path) => {
    expect(parseReference(input)).toMatchObject({ domain, path })
  })

  it('keeps a digest, with or without a tag', () => {
    const d = `sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa`
    expect(parseReference(`busybox:latest@${d}`)).toMatchObject({ tag: 'latest', digest: d, full: `docker.io/library/busybox:latest@${d}`, familiar: `busybox:latest@${d}` })
    const r = parseReference(`redis@${d}`)
    expect(r.tag).toBeUndefined()
    expect(r).toMatchObject({ digest: d, full: `docker.io/library/redis@${d}`, familiar: `redis@${d}` })
    expect(parseReference('dmcgowan/myapp')).toMatchObject({ full: 'docker.io/dmcgowan/myapp:latest' })
    expect(parseReference('host:5000/a/b:tag')).toMatchObject({ domain: 'host:5000', path: 'a/b', tag: 'tag', full: 'host:5000/a/b:tag', familiar: 'host:5000/a/b:tag' })
  })

  it('names the part that is wrong', () => {
    rejects(() => parseReference('app:' + 'x'.repeat(129)), 'tag')
    expect(() => parseReference('app:' + 'x'.repeat(128))).not.toThrow()
    rejects(() => parseReference('app:-x'), 'tag')
    rejects(() => parseReference(`app@sha256:${'F'.repeat(64)}`), 'digest')
    rejects(() => parseReference(`app@sha256:${'f'.repeat(63)}`), 'digest')
    rejects(() => parseReference(`app@md5:${'f'.repeat(32)}`), 'digest')
    rejects(() => parseReference('MyApp:1'), 'repository')
    rejects(() => parseReference('bad_host:5000/app'), 'domain')
    rejects(() => parseReference('dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c'), 'name')
    expect(() => parseReference('dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9')).not.toThrow()
  })
})

describe('parseImageName (tags for outputs)', () => {
  it('refuses a digest', () => {
    rejects(() => parseImageName(`app@sha256:${F64}`), 'digest')
    rejects(() => parseImageName(`app:1@sha256:${F64}`), 'digest')
  })
  it('normalises like docker tag', () => {
    expect(parseImageName('app')).toMatchObject({ full: 'docker.io/library/app:latest', familiar: 'app:latest', tag: 'latest' })
    expect(parseImageName('localhost:5000/app:1')).toMatchObject({ full: 'localhost:5000/app:1', familiar: 'localhost:5000/app:1', tag: '1' })
  })
})
