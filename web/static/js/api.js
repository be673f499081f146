// Thin client of the onepass HTTP API (same origin). Every failure becomes an ApiError whose message is
// the API's `detail` in words, so pages can show it as is.

export const API = "/v1/reconstructions";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

// FastAPI answers {"detail": "text"} for our errors and {"detail": [{loc, msg}, ...]} for validation
// errors; turn either into one readable sentence.
export function detailText(detail, status) {
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${d.msg}` : String(d.msg ?? JSON.stringify(d));
      })
      .join("; ");
  }
  if (detail && typeof detail === "object") return JSON.stringify(detail);
  return `HTTP ${status}`;
}

export async function errorFromResponse(response) {
  let detail = null;
  try {
    detail = (await response.json()).detail;
  } catch {
    detail = null;
  }
  const text = detailText(detail, response.status);
  return new ApiError(response.status, `${text} (HTTP ${response.status})`);
}

export async function apiFetch(url, init = {}) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

export async function apiJson(url, init = {}) {
  return (await apiFetch(url, init)).json();
}

export const jobUrl = (id) => `${API}/${encodeURIComponent(id)}`;
export const artifactUrl = (id, name) =>
  `${jobUrl(id)}/artifacts/${name.split("/").map(encodeURIComponent).join("/")}`;
// A job's input image as uploaded (every job keeps its inputs, whatever outputs it asked for).
export const inputUrl = (id, name) => `${jobUrl(id)}/inputs/${encodeURIComponent(name)}`;

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
