// Every API call goes through `api()`, which turns an error answer ({"detail": ...}) into an Error whose message
// shows the status and the detail. The API token, if the server has one, is kept for the tab (sessionStorage):
// it is a key to the server, so it does not stay on the disk after the tab is closed.

const TOKEN_KEY = "sketch2color.apiToken";
localStorage.removeItem(TOKEN_KEY);  // where older pages kept it
let tokenWatcher = () => {};

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {  // an empty token forgets the saved one
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// token.js hears how each call that sends the token was answered: accepted (2xx) or refused (401), so that the
// panels that need a token lock and unlock in one place, whichever call found out.
export function watchToken(callback) {
  tokenWatcher = callback;
}

function tellTokenWatcher(status) {  // a 2xx says the token (or no token) is accepted, a 401 that it is not
  const ok = status >= 200 && status < 300;
  if (ok || status === 401) tokenWatcher(ok);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

export function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {  // FastAPI validation errors
    return detail.map((item) => `${(item.loc || []).join(".")}: ${item.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = savedToken();
  if (token && options.auth !== false) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new ApiError("network", `the server cannot be reached (${error.message})`);
  }
  if (options.auth !== false) tellTokenWatcher(response.status);
  if (!response.ok) {
    let detail = response.statusText || "request failed";
    try {
      const body = await response.json();
      if (body && body.detail !== undefined) detail = describeDetail(body.detail);
    } catch (_) { /* not JSON: keep the status text */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}

// An upload with a progress bar: XMLHttpRequest, since fetch() cannot report upload progress. Like `api()`, it
// resolves to the JSON answer of a 2xx and throws an ApiError otherwise; the bar shows while the body is sent.
export function uploadWithProgress(path, body, bar) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    const token = savedToken();
    if (token) request.setRequestHeader("Authorization", `Bearer ${token}`);
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) bar.value = (100 * progress.loaded) / progress.total;
    });
    request.addEventListener("load", () => {
      bar.hidden = true;
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (_) { /* keep the status */ }
      tellTokenWatcher(request.status);
      if (request.status >= 200 && request.status < 300) resolve(answer);
      else reject(new ApiError(request.status, answer.detail !== undefined ? describeDetail(answer.detail) : request.statusText));
    });
    request.addEventListener("error", () => {
      bar.hidden = true;
      reject(new ApiError("network", "the server cannot be reached"));
    });
    bar.value = 0;
    bar.hidden = false;
    request.send(body);
  });
}
