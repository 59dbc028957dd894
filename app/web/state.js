// What the page remembers between events, all in one object. Each part belongs to one module, which alone changes
// it; the others only read it.

export const state = {
  // sketch.js. file: an upload, sent as is unless the user draws over it; box: where its preview lies on the canvas,
  // and its own size (the hints are sent at that size); drawn: the pen or the eraser has touched the canvas.
  sketch: { file: null, box: null, drawn: false },
  // sketch.js: the chosen tool, the stroke under way, and the tool to go back to after the eyedropper.
  drawing: { tool: "pen", active: false, last: null, previous: "pen" },
  // hints.js. empty: the hint layer has no pixel; undo: the layer before each stroke or clear, newest last.
  hints: { empty: true, undo: [] },
  // colorize.js: the debounced colorize after a hint stroke, one request at a time.
  recolor: { timer: null, inFlight: false, pending: false, done: false },
  // colorize.js: the last few results, newest first, and the one shown (what the Download menu offers).
  results: [],
  shown: null,
  // models.js: the last GET /models answer (which version is served, which versions take hints).
  models: null,
  // jobs.js. list: the last GET /jobs answer, newest first; selected: the job whose loss curves are drawn;
  // launched: the job the launch form's message follows.
  jobs: { list: [], selected: null, launched: null },
  // datasets.js: an import runs, so the datasets are polled; uploaded: the upload the message follows.
  datasets: { importing: false, uploaded: null },
};
