// The Dockerfile next to this file, imported as builders and extended in TypeScript:
//   imagesmith build examples/dockerfile-import/build.ts --context examples/dockerfile-import
// BASE_IMAGE picks the base (e.g. oci-archive:/path/busybox.tar to build offline); the Dockerfile's
// own default is busybox:1.36 from Docker Hub.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fromDockerfile } from 'imagesmith'

const here = dirname(fileURLToPath(import.meta.url))
const imported = fromDockerfile(join(here, 'Dockerfile'), {
  buildArgs: { VERSION: '2.0', ...(process.env.BASE_IMAGE ? { BASE: process.env.BASE_IMAGE } : {}) },
})

// Stages are builders: `imported.stages.build` is the first one, by its name.
export default imported.target.label('org.opencontainers.image.version', '2.0')
