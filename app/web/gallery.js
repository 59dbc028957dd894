// The chapters' gallery: under the chapters table, one section per chapter with finished or failed pages. Each
// finished page shows its result beside its original (a visible pair: phones have no hover) and links to the full
// result; each failed page is named with why. It grows as pages finish: batches.js calls showGalleries() on every
// poll, and a chapter's page list (GET /batches/{id}/pages) is read again only when its counts changed.
// The images need the API token, so each is fetched with it (api.js) once it comes near the screen and shown
// through an object URL, which is revoked when its chapter leaves the list.

import { api } from "./api.js";
import { $ } from "./dom.js";

const galleries = new Map();  // batch id -> {section, grid, failed, seen: "done/failed" counts, shown: Set of indices, urls}
const nearScreen = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    nearScreen.unobserve(entry.target);
    load(entry.target);
  }
}, { rootMargin: "200px" });

export function showGalleries(batches) {
  const listed = new Set(batches.map((batch) => batch.id));
  for (const [id, gallery] of galleries) {
    if (listed.has(id)) continue;
    gallery.urls.forEach((url) => URL.revokeObjectURL(url));
    gallery.section.remove();
    galleries.delete(id);
  }
  const sections = [];
  for (const batch of batches) {
    if (!batch.pages_done && !batch.pages_failed) continue;
    const gallery = galleries.get(batch.id) || newGallery(batch);
    gallery.heading.textContent = `Chapter ${batch.id.slice(0, 8)}: ${batch.pages_done} of ${batch.pages_total} pages finished`;
    const seen = `${batch.pages_done}/${batch.pages_failed}`;
    if (gallery.seen !== seen) {
      gallery.seen = seen;
      addPages(batch, gallery);
    }
    sections.push(gallery.section);
  }
  $("batch-galleries").replaceChildren(...sections);  // moves the kept sections: their images stay loaded
}

function newGallery(batch) {
  const section = document.createElement("section");
  section.className = "gallery";
  section.dataset.batch = batch.id;
  const heading = document.createElement("h3");
  const grid = document.createElement("ul");
  grid.className = "gallery-pages";
  const failed = document.createElement("ul");
  failed.className = "gallery-failed";
  section.append(heading, grid, failed);
  const gallery = { section, heading, grid, failed, seen: "", shown: new Set(), urls: [] };
  galleries.set(batch.id, gallery);
  return gallery;
}

async function addPages(batch, gallery) {  // GET /batches/{id}/pages: [{index, name, state, reason}, ...]
  let pages;
  try {
    pages = await (await api(`batches/${batch.id}/pages`)).json();
  } catch (_) {
    gallery.seen = "";  // read it again on the next poll
    return;
  }
  for (const page of pages) {
    if (page.state === "pending" || gallery.shown.has(page.index)) continue;
    gallery.shown.add(page.index);
    if (page.state === "done") gallery.grid.append(finishedPage(batch, page, gallery));
    else gallery.failed.append(failedPage(page));
  }
}

function finishedPage(batch, page, gallery) {
  const base = `batches/${batch.id}/pages/${page.index}`;
  const item = document.createElement("li");
  item.className = "gallery-page";
  const link = document.createElement("a");
  link.className = "gallery-pair";
  link.title = `${page.name}: open the full result`;
  const format = batch.options.format;
  if (format === "png") {
    link.target = "_blank";
    link.rel = "noopener";
    link.append(thumbnail(`${base}/result`, "result", `${page.name}, colored`, gallery, link));
  } else {  // a layered file: no browser shows it, so it is downloaded, and the pair shows a placeholder
    link.download = page.name.replace(/\.[^./]*$/, "") + `.${format}`;
    const layered = document.createElement("span");
    layered.className = "result layered";
    layered.textContent = `.${format}`;
    link.append(layered);
    link.addEventListener("click", (event) => {
      if (link.href) return;
      event.preventDefault();
      fetchUrl(`${base}/result`, gallery).then((url) => { link.href = url; link.click(); }).catch(() => {});
    });
  }
  link.append(thumbnail(`${base}/original`, "original", `${page.name}, as uploaded`, gallery));
  const caption = document.createElement("span");
  caption.className = "gallery-name";
  caption.textContent = page.name;
  item.append(link, caption);
  return item;
}

function thumbnail(path, role, alt, gallery, link = null) {
  const image = document.createElement("img");
  image.className = role;
  image.alt = alt;
  image.loading = "lazy";
  image.dataset.path = path;
  image.gallery = gallery;
  image.link = link;
  nearScreen.observe(image);
  return image;
}

async function load(image) {
  try {
    const url = await fetchUrl(image.dataset.path, image.gallery);
    image.src = url;
    if (image.link) image.link.href = url;
  } catch (_) {
    image.alt = `${image.alt} (could not be loaded)`;
  }
}

async function fetchUrl(path, gallery) {
  const url = URL.createObjectURL(await (await api(path)).blob());
  gallery.urls.push(url);
  return url;
}

function failedPage(page) {
  const item = document.createElement("li");
  const name = document.createElement("strong");
  name.textContent = page.name;
  item.append(name, `: ${page.reason || "failed"}`);
  return item;
}
