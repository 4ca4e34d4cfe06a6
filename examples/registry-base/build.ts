// A build on a registry base image: `from('busybox')` means docker.io/library/busybox:latest, as in
// a Dockerfile. Without internet, point docker.io at a mirror (a local registry holding busybox):
//
//   imagesmith build examples/registry-base/build.ts --registry-mirror docker.io=127.0.0.1:5000 -o type=oci,dest=out.tar
//   IMAGESMITH_REGISTRY_MIRRORS=docker.io=127.0.0.1:5000 imagesmith build examples/registry-base/build.ts
//
// or from code: `.build({ registry: { mirrors: { 'docker.io': ['127.0.0.1:5000'] } } })`. The result's
// `bases` records the digest `busybox:latest` resolved to; `from('busybox@sha256:…')` repeats it exactly.
import { image } from 'imagesmith'

export default image()
  .from('busybox')
  .run('echo "built on $(uname -m) from a registry base" > /etc/motd')
  .workdir('/srv')
  .cmd(['cat', '/etc/motd'])
