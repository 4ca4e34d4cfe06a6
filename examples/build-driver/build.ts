// A build driver of your own. This one writes down what it builds (as a Dockerfile) and how long the
// build took, and hands the build to the local driver. A driver that sends builds to another engine
// has the same shape: it is handed the checked build and returns at least the image digest.
//
//   node --import tsx examples/build-driver/build.ts out.tar
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { image, localDriver, toDockerfile, type Driver } from 'imagesmith'

const logged: Driver = {
  name: 'logged',
  async build(request) {
    process.stderr.write(`# ${request.tags.join(', ') || 'untagged'}\n${toDockerfile(request.target)}`)
    const started = Date.now()
    const result = await localDriver.build(request)
    process.stderr.write(`# built ${result.digest} in ${Date.now() - started} ms\n`)
    return result
  },
}

const here = dirname(fileURLToPath(import.meta.url))
const app = image()
  .from(process.env['BASE_IMAGE'] ?? 'busybox:1.36')
  .workdir('/app')
  .copy('app/', '.')
  .cmd(['cat', '/app/hello.txt'])

const result = await app.build({
  driver: logged,
  context: here,
  tags: ['driver-example:1'],
  output: { type: 'oci', dest: process.argv[2] ?? join(here, 'app.tar') },
})
process.stdout.write(`${result.digest}\n`)
