// An app on the monorepo's base (see base.ts): `from('mono/base:1')` finds the image a local build
// tagged before any registry is asked, as Docker does (`--pull` asks the registry instead;
// `from('local:mono/base:1')` never asks one).
//
//   imagesmith build examples/local-base/base.ts -t mono/base:1
//   imagesmith build examples/local-base/app.ts --context examples/local-base -t mono/app:1
//   imagesmith save mono/app:1 -o app.tar
import { image } from 'imagesmith'

export default image()
  .from('mono/base:1')
  .workdir('/app')
  .copy('app/', '.', { chmod: '755' })
  .cmd(['/bin/sh', '/app/start.sh'])
