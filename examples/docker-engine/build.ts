// The same builder, handed to a Docker Engine instead of built here: a CI service or a bigger
// remote host that already runs dockerd (or Podman's `podman system service`).
//
//   imagesmith build examples/docker-engine/build.ts --context examples/docker-engine --engine docker -t app:1
//   DOCKER_HOST=ssh://ci@builder.example imagesmith build examples/docker-engine/build.ts --context examples/docker-engine --engine docker -t app:1
//   imagesmith build examples/docker-engine/build.ts --context examples/docker-engine --engine docker,host=tcp://builder:2376 -t registry.example/app:1 --push
//
// The builder is printed as a Dockerfile and posted with the context (.dockerignore applied here) to
// the engine's `POST /build`; the engine's BuildKit runs it and its steps show as ours do. A local base
// (an `oci-archive:` or an image in the local store) is loaded into the engine first. The cache, the
// layer bytes and the digests are the engine's. From code:
//   await app.build({ context, engine: { type: 'docker', host: 'unix:///var/run/docker.sock' }, tags: ['app:1'] })
// BASE_IMAGE names the base (busybox from Docker Hub by default; the tests use an offline archive).
import { image } from 'imagesmith'

export default image()
  .from(process.env['BASE_IMAGE'] ?? 'docker.io/library/busybox:1.36')
  .workdir('/srv')
  .copy('app/', './')
  .run('wc -l < greeting.txt > lines.txt')
  .label('org.opencontainers.image.title', 'imagesmith docker-engine example')
  .cmd(['cat', '/srv/greeting.txt'])
