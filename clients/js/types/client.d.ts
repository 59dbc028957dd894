// Types of the sketch2color client (dist/client.js, the API's /embed/client.js). Built on ./schema.d.ts, which
// openapi-typescript generates from the API's OpenAPI document (`npm run generate`); a test regenerates it
// from the live app and fails on any difference, so these types follow the API.

import type { components, operations } from "./schema";

type Schemas = components["schemas"];
type JsonOf<Operation, Status extends number> = Operation extends {
  responses: { [S in Status]: { content: { "application/json": infer Body } } };
}
  ? Body
  : never;

export type { components, operations, paths } from "./schema";
export type Job = Schemas["Job"];
export type JobMetrics = Schemas["JobMetrics"];
export type ModelsResponse = Schemas["ModelsResponse"];
export type ModelVersion = Schemas["ModelVersion"];
export type Readiness = Schemas["Readiness"];
export type DatasetSummary = Schemas["DatasetSummary"];
export type DatasetDetail = Schemas["DatasetDetail"];
export type DatasetImport = Schemas["DatasetImport"];
export type ErrorDetail = Schemas["ErrorDetail"];
/** POST /jobs' body: the dataset and every TrainConfig field by name. */
export type JobLaunch = operations["launchJob"]["requestBody"]["content"]["application/json"];
/** POST /colorize's query parameters: version, size, fill, lines, format. */
export type ColorizeQuery = NonNullable<operations["colorize"]["parameters"]["query"]>;
/** POST /datasets' options beside `name` and `archive`. */
export type DatasetUploadOptions = Omit<
  operations["uploadDataset"]["requestBody"]["content"]["multipart/form-data"],
  "name" | "archive"
>;

/** What can hold a picture: a Blob or File, a canvas (sent as PNG), or the file's bytes. */
export type ImageSource = Blob | HTMLCanvasElement | OffscreenCanvas | ArrayBuffer | ArrayBufferView;

export interface ColorizeOptions {
  /** An RGBA layer (transparent except the color dabs), best the sketch's own size. */
  hints?: ImageSource;
  /** A published version number or a label; default: the served version. */
  version?: number | NonNullable<ColorizeQuery["version"]>;
  size?: ColorizeQuery["size"];
  fill?: ColorizeQuery["fill"];
  lines?: ColorizeQuery["lines"];
  format?: ColorizeQuery["format"];
  signal?: AbortSignal;
}

export interface ColorizeResult {
  /** The picture (image/png) or the layered file (format psd, ora, zip). */
  blob: Blob;
  /** The generator version that drew it (the X-Model-Version header). */
  version: number | null;
  /** The result's size (the X-Image-Size header). */
  size: { width: number; height: number } | null;
  contentType: string;
  /** colorized.png, or the layered file's name (Content-Disposition). */
  filename: string;
}

export interface ClientOptions {
  /** The API's address, e.g. "https://colorizer.example"; default: the page's own origin. */
  baseUrl?: string;
  /** The server's S2C_API_TOKEN, only where it sets one (sent as `Authorization: Bearer`). */
  token?: string;
  /** Another fetch (tests, a proxy); default: the global one. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  body?: BodyInit;
  json?: unknown;
  signal?: AbortSignal;
}

export declare const CLIENT_VERSION: string;

/** The base class of every error the client throws. */
export declare class Sketch2ColorError extends Error {}

/** The server answered with an error status; `detail` is the API's own explanation. */
export declare class ApiError extends Sketch2ColorError {
  constructor(status: number, detail: string, response?: Response);
  readonly status: number;
  readonly detail: ErrorDetail["detail"];
  /** Seconds to wait before trying again (503 and 413 carry Retry-After), else null. */
  readonly retryAfter: number | null;
  readonly response: Response | undefined;
}

/** No answer: a server that is down, a wrong address, or an origin the server does not allow (CORS). */
export declare class NetworkError extends Sketch2ColorError {
  constructor(url: string, cause?: unknown);
  readonly url: string;
}

export declare function toBlob(image: ImageSource): Promise<Blob>;

export declare class Sketch2ColorClient {
  constructor(options?: ClientOptions);
  baseUrl: string;
  token: string | null;
  request(method: string, path: string, options?: RequestOptions): Promise<Response>;
  colorize(image: ImageSource, options?: ColorizeOptions): Promise<ColorizeResult>;
  listModels(): Promise<JsonOf<operations["listModels"], 200>>;
  ready(): Promise<JsonOf<operations["readyz"], 200>>;
  listJobs(options?: NonNullable<operations["listJobs"]["parameters"]["query"]>): Promise<JsonOf<operations["listJobs"], 200>>;
  getJob(jobId: string): Promise<JsonOf<operations["getJob"], 200>>;
  getJobMetrics(jobId: string): Promise<JsonOf<operations["getJobMetrics"], 200>>;
  launchJob(launch: JobLaunch): Promise<JsonOf<operations["launchJob"], 202>>;
  cancelJob(jobId: string): Promise<JsonOf<operations["cancelJob"], 202>>;
  resumeJob(jobId: string): Promise<JsonOf<operations["resumeJob"], 202>>;
  deleteJob(jobId: string): Promise<JsonOf<operations["deleteJob"], 200>>;
  listDatasets(): Promise<JsonOf<operations["listDatasets"], 200>>;
  getDataset(name: string): Promise<JsonOf<operations["getDataset"], 200>>;
  uploadDataset(name: string, archive: ImageSource, options?: DatasetUploadOptions): Promise<JsonOf<operations["uploadDataset"], 202>>;
  deleteDataset(name: string): Promise<JsonOf<operations["deleteDataset"], 200>>;
}

export declare function createClient(options?: ClientOptions): Sketch2ColorClient;
