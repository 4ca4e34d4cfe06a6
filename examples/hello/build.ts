// A demo build: a busybox image made from scratch, offline. scripts/demo.sh prepares rootfs/
// (busybox-static plus its applet links) in the context next to this file.
import { image } from 'imagesmith'

const base = image()
  .from('scratch')
  .copy('rootfs/', '/')
  .label('org.opencontainers.image.title', 'imagesmith demo')

const withUser =
  // RUN needs an OCI runtime, which needs root; without it the demo stays COPY-only. As root,
  // scripts/demo.sh makes sure runc is there (installing it on Debian) before building.
  process.getuid?.() === 0 ? base.run('echo "app:x:1000:1000::/data:/bin/sh" >> /etc/passwd && mkdir -p /data && chown 1000 /data') : base

export default withUser
  .env('GREETING', 'hello')
  .workdir('/app')
  .copy('app/', '.', { chmod: '755' })
  .user('1000')
  .expose(8080)
  .volume('/data')
  .entrypoint(['/bin/sh', '/app/hello.sh'])
