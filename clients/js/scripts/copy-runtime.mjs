// The runtime files of this package are the ones the API serves at /embed/ (app/embed/ in the repository):
// one source, so the npm package and the script tag always run the same code. Copied on `npm ci` and before
// `npm pack`/`npm publish` (the `prepare` script).
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const served = join(here, "..", "..", "..", "app", "embed");
const dist = join(here, "..", "dist");
mkdirSync(dist, { recursive: true });
for (const name of readdirSync(served).filter((file) => file.endsWith(".js"))) {
  copyFileSync(join(served, name), join(dist, name));
}
