// sketch2color's browser and Node client: one class over fetch, no dependencies. Its types
// (clients/js/types/client.d.ts) are built on the ones generated from the API's OpenAPI document, so a
// change of the API shows up as a type error in the code that uses it.
//
// Every failure is an exception of one of two classes: ApiError (the server answered with an error status:
// `status`, and the API's own `detail`) or NetworkError (no answer: the server is down, or, from a browser,
// it does not allow the page's origin).

export const CLIENT_VERSION = "0.1.0";

/** The base class of every error this client throws. */
export class Sketch2ColorError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server answered with an error status; `detail` is the API's explanation (`{"detail": "..."}`). */
export class ApiError extends Sketch2ColorError {
  constructor(status, detail, response) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
    this.response = response;
    const retryAfter = response && response.headers.get("Retry-After");
    this.retryAfter = retryAfter === null || retryAfter === undefined ? null : Number(retryAfter);
  }
}

/** No answer at all: a wrong address, a server that is down, or (from a browser) an origin it does not allow. */
export class NetworkError extends Sketch2ColorError {
  constructor(url, cause) {
    super(
      `cannot reach ${url}: the server is down, the address is wrong, or it does not allow this page's ` +
        "origin (the server's S2C_CORS_ORIGINS)",
      { cause },
    );
    this.url = url;
  }
}

/** A Blob of what can hold a picture: a Blob or File as it is, a canvas as PNG, bytes as a Blob. */
export async function toBlob(image) {
  if (image instanceof Blob) return image;
  if (typeof OffscreenCanvas !== "undefined" && image instanceof OffscreenCanvas) {
    return image.convertToBlob({ type: "image/png" });
  }
  if (image && typeof image.toBlob === "function") {
    return new Promise((resolve, reject) =>
      image.toBlob((blob) => (blob ? resolve(blob) : reject(new TypeError("the canvas is empty"))), "image/png"),
    );
  }
  if (image instanceof ArrayBuffer || ArrayBuffer.isView(image)) return new Blob([image]);
  throw new TypeError("colorize needs a Blob, a File, a canvas or bytes");
}

function parseSize(header) {
  const match = /^(\d+)x(\d+)$/.exec(header || "");
  return match ? { width: Number(match[1]), height: Number(match[2]) } : null;
}

function filenameOf(response, format) {
  const match = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : `colorized.${format || "png"}`;
}

async function detailOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
    if (body && body.detail !== undefined) return JSON.stringify(body.detail);
  } catch (_) {
    // not JSON (a proxy's error page): the status text says what there is to say
  }
  return response.statusText || "request failed";
}

/** The API at `baseUrl` (default: this page's origin), with its token when the server sets S2C_API_TOKEN. */
export class Sketch2ColorClient {
  constructor(options = {}) {
    this.baseUrl = String(options.baseUrl || "").replace(/\/+$/, "");
    this.token = options.token || null;
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
  }

  /** The answer to one call; ApiError for an error status, NetworkError when there is none. */
  async request(method, path, { query, body, json, signal } = {}) {
    const url = new URL(this.baseUrl + path, globalThis.location ? globalThis.location.href : undefined);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    }
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    let response;
    try {
      response = await this.fetch(url.href, { method, headers, body, signal });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new NetworkError(url.origin + url.pathname, error);
    }
    if (!response.ok) throw new ApiError(response.status, await detailOf(response), response);
    return response;
  }

  async json(method, path, options) {
    return (await this.request(method, path, options)).json();
  }

  /** POST /colorize: the sketch (Blob, File, canvas or bytes) and optional RGBA hints -> the picture. */
  async colorize(image, options = {}) {
    const form = new FormData();
    form.append("file", await toBlob(image), "sketch.png");
    if (options.hints) form.append("hints", await toBlob(options.hints), "hints.png");
    const { version, size, fill, lines, format, signal } = options;
    const response = await this.request("POST", "/colorize", {
      query: { version, size, fill, lines, format },
      body: form,
      signal,
    });
    const blob = await response.blob();
    const modelVersion = response.headers.get("X-Model-Version");
    return {
      blob,
      version: modelVersion === null ? null : Number(modelVersion),
      size: parseSize(response.headers.get("X-Image-Size")),
      contentType: response.headers.get("Content-Type") || blob.type,
      filename: filenameOf(response, format),
    };
  }

  /** GET /models: the policy, labels, and every published version with its metrics. */
  listModels() {
    return this.json("GET", "/models");
  }

  /** GET /readyz: which version is served (ApiError 503 until one is loaded). */
  ready() {
    return this.json("GET", "/readyz");
  }

  listJobs(options = {}) {
    return this.json("GET", "/jobs", { query: { limit: options.limit } });
  }

  getJob(jobId) {
    return this.json("GET", `/jobs/${encodeURIComponent(jobId)}`);
  }

  getJobMetrics(jobId) {
    return this.json("GET", `/jobs/${encodeURIComponent(jobId)}/metrics`);
  }

  /** POST /jobs: queue a training job (every TrainConfig field by name); its record. */
  launchJob(launch) {
    return this.json("POST", "/jobs", { json: launch });
  }

  cancelJob(jobId) {
    return this.json("POST", `/jobs/${encodeURIComponent(jobId)}/cancel`);
  }

  resumeJob(jobId) {
    return this.json("POST", `/jobs/${encodeURIComponent(jobId)}/resume`);
  }

  deleteJob(jobId) {
    return this.json("DELETE", `/jobs/${encodeURIComponent(jobId)}`);
  }

  listDatasets() {
    return this.json("GET", "/datasets");
  }

  getDataset(name) {
    return this.json("GET", `/datasets/${encodeURIComponent(name)}`);
  }

  /** POST /datasets: a zip of pairs or pictures as dataset `name`; the import record (it imports in the background). */
  async uploadDataset(name, archive, options = {}) {
    const form = new FormData();
    form.append("name", name);
    form.append("archive", await toBlob(archive), `${name}.zip`);
    for (const [key, value] of Object.entries(options)) {
      if (value !== undefined && value !== null) form.append(key, String(value));
    }
    return this.json("POST", "/datasets", { body: form });
  }

  deleteDataset(name) {
    return this.json("DELETE", `/datasets/${encodeURIComponent(name)}`);
  }
}

/** `new Sketch2ColorClient(options)`, for those who prefer a function. */
export function createClient(options) {
  return new Sketch2ColorClient(options);
}
