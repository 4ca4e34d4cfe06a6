import { image, type ImageBuilder } from '../../src/index.js'
import { busyboxArchive } from './testbed.js'

/** Exercises quoting (spaces, quotes, `$`, backslashes), exec-form fallbacks, flags and a second stage. */
export function exportedApp(baseRef = `oci-archive:${busyboxArchive()}`): ImageBuilder {
  const base = image().from(baseRef)
  const tools = base.run('mkdir -p /out && echo tool > /out/tool && chmod 700 /out/tool')
  return base
    .arg('VERSION', '1.2 beta')
    .env({ GREETING: 'hello "world"', LITERAL: '$HOME and \\n', EMPTY: '' })
    .workdir('/srv/my app')
    .copy(['a b.txt', 'plain.txt'], './', { chown: '1000:1000', chmod: '640' })
    .copy('/out/tool', '/usr/local/bin/tool', { from: tools })
    .shell(['/bin/sh', '-eu', '-c'])
    .run('echo "$VERSION" > version.txt')
    .run('echo a > /multi\necho b >> /multi')
    .run(['/bin/sh', '-c', 'echo exec > /exec.txt'])
    .label({ 'org.example.title': 'my app', 'org.example.quote': "it's" })
    .user('1000')
    .expose([8080, '53/udp'])
    .volume('/data')
    .entrypoint(['/bin/sh', '-c'])
    .cmd('echo $GREETING')
    .stopSignal('SIGINT')
}

/** More of the builder API: a heredoc script, marked words, mounts, ONBUILD, HEALTHCHECK, a base stage. */
export function exportedScripted(): ImageBuilder {
  const base = image().from(`oci-archive:${busyboxArchive()}`).env('APP', '/opt/app').workdir('/opt/app')
  return image()
    .from(base)
    .arg('MODE', 'release')
    .run('set -e\necho "$MODE" > mode.txt\nmkdir -p cache\n')
    .run('ls /ctx > /ctx-listing', { mounts: [{ type: 'bind', target: '/ctx' }, { type: 'cache', target: '/var/cache/x', sharing: 'locked' }], network: 'none' })
    .copy('plain.txt', '$APP/copied.txt', { expand: true })
    .label('org.example.mode', '${MODE}', { expand: true })
    .onBuild('RUN echo child')
    .healthcheck({ test: 'test -f /opt/app/mode.txt', interval: '15s', timeout: '2s', retries: 4 })
    .user('nobody')
    .cmd(['cat', 'mode.txt'])
}
