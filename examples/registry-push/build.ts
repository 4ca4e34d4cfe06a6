// A small static site on busybox, built to be pushed. How it reaches a registry:
//
//   imagesmith login registry.example.com -u ci --password-stdin < token.txt      # once, as docker login
//   imagesmith build examples/registry-push/build.ts --context examples/registry-push \
//     -t registry.example.com/team/site:1 -t registry.example.com/team/site:latest --push
//
// Every -t is pushed; blobs the registry has are skipped, and busybox's layer is mounted instead of
// uploaded when busybox came from the same registry. From code, the same push is
//   await site.build({ context, tags: [...], output: { type: 'registry' } })   // result.pushed counts what moved
// and `-o type=docker` (or --load) puts the image into the local Docker engine instead.
// Offline, point docker.io at a local registry that holds busybox: --registry-mirror docker.io=127.0.0.1:5000.
import { image } from 'imagesmith'

export default image()
  .from('busybox')
  .copy('site/', '/srv/www/')
  .label('org.opencontainers.image.title', 'imagesmith registry-push example')
  .expose(8080)
  .cmd(['httpd', '-f', '-p', '8080', '-h', '/srv/www'])
