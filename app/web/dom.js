// Small DOM helpers that every panel uses.

export const $ = (id) => document.getElementById(id);

export function show(element, text) {  // a message element is hidden while it has nothing to say
  element.textContent = text;
  element.hidden = !text;
}

export function cell(content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  return td;
}

export function emptyRow(text, columns) {  // the one row a table shows when it has nothing to list
  const row = document.createElement("tr");
  row.className = "empty";
  const td = cell(text);
  td.colSpan = columns;
  row.append(td);
  return row;
}

export function actionButton(text, action) {  // a button in a table row: its click does not select the row
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.addEventListener("click", (event) => { event.stopPropagation(); action(); });
  return button;
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
