// Compiled by `npm run typecheck` (and the Python test suite), never run: code written against the package's
// types the way a user would. If the API changes (generated types/schema.d.ts), this stops compiling.

import {
  ApiError,
  createClient,
  NetworkError,
  type ColorizeResult,
  type Job,
  type ModelsResponse,
} from "sketch2color-client";
import type { ColorizedDetail, SketchColorizer } from "sketch2color-client/element";

export async function everyCall(canvas: HTMLCanvasElement, zip: Blob): Promise<void> {
  const client = createClient({ baseUrl: "https://colorizer.example", token: "secret" });
  const result: ColorizeResult = await client.colorize(canvas, {
    hints: canvas,
    size: "original",
    fill: "regions",
    lines: "keep",
    format: "png",
    version: "stable",
  });
  const version: number | null = result.version;
  const width: number | undefined = result.size?.width;
  const models: ModelsResponse = await client.listModels();
  const served: number | null | undefined = models.active_version;
  const jobs: Job[] = await client.listJobs({ limit: 10 });
  const launched: Job = await client.launchJob({ dataset: "demo", steps: 100, ngf: 16 });
  const state: Job["state"] = (await client.getJob(launched.id)).state;
  await client.cancelJob(launched.id);
  const datasets = await client.listDatasets();
  const pairs: number = datasets[0].train;
  await client.uploadDataset("mine", zip, { kind: "pictures", val_fraction: 0.1 });
  void [version, width, served, jobs, state, pairs];
  try {
    await client.ready();
  } catch (error) {
    if (error instanceof ApiError) {
      const detail: string = error.detail;
      const status: number = error.status;
      void [detail, status, error.retryAfter];
    } else if (error instanceof NetworkError) {
      void error.url;
    }
  }
}

export function theElement(): void {
  const element = document.createElement("sketch-colorizer");
  const typed: SketchColorizer = element;
  typed.tool = "bucket";
  typed.addEventListener("colorized", (event) => {
    const detail: ColorizedDetail = event.detail;
    void [detail.blob, detail.version, detail.url];
  });
  void typed.colorize(typed.sketchCanvas);
}
