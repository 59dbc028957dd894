// sketch2color page: draw or upload a sketch and colorize it; follow and launch training jobs.
// Plain JavaScript modules, no build step, one per panel:
//   api.js (every API call, the token)   dom.js (small DOM helpers)   state.js (what the page remembers)
//   sketch.js (the canvases, drawing tools, shortcuts)   hints.js (hint colors, eyedropper)   colorize.js (results)
//   download.js (the Download menu: PNG, PSD, ORA)   models.js (Models panel, status pill)   datasets.js (Datasets panel)   jobs.js (Training panel)   chart.js
//   batches.js (Chapters panel: many pages on the workers)
//   token.js (the API token field, and the panels locked until the server has one it takes)
// Importing a module only sets up its panel's listeners; everything that calls across modules starts here, once
// every module has loaded.

import { clearCanvas, selectTool } from "./sketch.js";
import { HINT_COLORS, setHintColor } from "./hints.js";
import { refreshModelStatus } from "./models.js";
import { loadDatasets } from "./datasets.js";
import { refreshJobs } from "./jobs.js";
import { batchesRunning, refreshBatches } from "./batches.js";
import { state } from "./state.js";
import { tokenLocked, whenTokenChanges } from "./token.js";

const REFRESH_MS = 3000;

clearCanvas();
setHintColor(HINT_COLORS[0][1], { select: false });
selectTool("pen");
refreshModelStatus();
loadDatasets();
refreshJobs();
refreshBatches();
whenTokenChanges(() => {
  loadDatasets();
  refreshJobs();
  refreshBatches();
});
setInterval(() => {
  if (document.hidden) return;
  refreshModelStatus();
  if (tokenLocked()) return;  // nothing to read until a token is entered
  refreshJobs();
  if (state.datasets.importing) loadDatasets();
  if (batchesRunning()) refreshBatches();
}, REFRESH_MS);
