// The layer case's build script, run by the real CLI (`imagesmith build bench/layer-build.ts --context <tree>`):
// one COPY of the whole context onto scratch, as `COPY . /app` in a Dockerfile.
import { image } from 'imagesmith'

export default image().from('scratch').copy('.', '/app')
