// Types of the <sketch-colorizer> element (dist/sketch2color.js, the API's /embed/sketch2color.js). Importing
// the module defines the element; it also re-exports the client.

import type { ColorizeResult, ImageSource, Sketch2ColorClient } from "./client";

export * from "./client";

export type Tool = "pen" | "brush" | "bucket";

export interface ColorizedDetail extends ColorizeResult {
  /** An object URL of the blob, shown in the element and behind its Download link. */
  url: string;
}

export declare class SketchColorizer extends HTMLElement {
  /** The client over the `api` and `token` attributes. */
  readonly client: Sketch2ColorClient;
  readonly sketchCanvas: HTMLCanvasElement;
  readonly hintCanvas: HTMLCanvasElement;
  tool: Tool;
  /** Colorize `image`, or without one the drawing and its hints; shows the result and fires `colorized`. */
  colorize(image?: ImageSource): Promise<ColorizedDetail>;
  /** Put a picture on the page as the sketch (scaled down to at most 1024 px). */
  load(file: Blob): Promise<void>;
  clear(): void;
  undo(): void;
  addEventListener<K extends keyof SketchColorizerEventMap>(
    type: K,
    listener: (this: SketchColorizer, event: SketchColorizerEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

export interface SketchColorizerEventMap extends HTMLElementEventMap {
  colorized: CustomEvent<ColorizedDetail>;
  "colorize-error": CustomEvent<{ error: Error }>;
}

declare global {
  interface HTMLElementTagNameMap {
    "sketch-colorizer": SketchColorizer;
  }
}
