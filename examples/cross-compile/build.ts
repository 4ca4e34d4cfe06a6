// Cross-compiling without emulation: the build stage runs on the build machine (BUILD_PLATFORM),
// natively, once per target platform, and makes that target's output (TARGETARCH is the target's);
// each platform's image only copies its own. Nothing runs under qemu, however many platforms.
//
//   imagesmith build examples/cross-compile/build.ts --context examples/cross-compile \
//     --platform linux/amd64,linux/arm64 -o type=oci,dest=hello.tar
//
// BASE_IMAGE names a base offering every target platform (an index), e.g. busybox from a registry.
import { BUILD_PLATFORM, image } from 'imagesmith'

const base = process.env['BASE_IMAGE'] ?? 'docker.io/library/busybox:1.36'

// Declared without a default, the platform ARGs take the build's values, as in a Dockerfile.
const build = image()
  .from(base, { platform: BUILD_PLATFORM })
  .arg('TARGETARCH')
  .arg('BUILDARCH')
  .copy('src/hello.sh.in', '/src/hello.sh.in')
  .run('mkdir -p /out && sed -e "s/@TARGET@/$TARGETARCH/" -e "s/@BUILD@/$BUILDARCH/" /src/hello.sh.in > /out/hello && chmod 755 /out/hello')

export default image()
  .from(base)
  .copy('/out/hello', '/usr/local/bin/hello', { from: build })
  .cmd(['hello'])
