// Every API call goes through `api()`, which turns an error answer ({"detail": ...}) into an Error whose message
// shows the status and the detail. The API token, if the server has one, is kept in the browser's localStorage.

const TOKEN_KEY = "sketch2color.apiToken";

export function savedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {  // an empty token forgets the saved one
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
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
  if (!response.ok) {
    let detail = response.statusText || "request failed";
    try {
      const body = await response.json();
      if (body && body.detail !== undefined) detail = describeDetail(body.detail);
    } catch (_) { /* not JSON: keep the status text */ }
    if (response.status === 401) detail += " (enter the API token in the Training panel)";
    throw new ApiError(response.status, detail);
  }
  return response;
}
