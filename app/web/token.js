// The API token, asked for in one place: the field in the header. The server says whether it needs one: a call that
// sends the token (datasets, jobs, model changes) is answered 401 without it. body[data-token] then says
//   needed: the server wants a token and none is entered     wrong: the entered one was refused
//   accepted: a token is entered and the server took it       open: no token entered and none needed
// While it is "needed" or "wrong", the panels that need the token show a line that says so (.locked-line) in place
// of their controls and tables (.needs-token), instead of errors or empty lists; see style.css.

import { saveToken, savedToken, watchToken } from "./api.js";
import { $, show } from "./dom.js";

const input = $("token");
input.value = savedToken() || "";
let onNewToken = () => {};

export function tokenLocked() {
  return ["needed", "wrong"].includes(document.body.dataset.token);
}

watchToken((accepted) => {
  const token = savedToken();
  document.body.dataset.token = accepted ? (token ? "accepted" : "open") : (token ? "wrong" : "needed");
  show($("token-message"), !accepted && token ? "The server refused this token. Check it and enter it again." : "");
});

export function whenTokenChanges(callback) {  // app.js: load the panels again with the new token
  onNewToken = callback;
}

function useToken() {
  const token = input.value.trim();
  if (token === (savedToken() || "")) return;  // Enter sends both change and submit: one load
  saveToken(token);
  show($("token-message"), "");
  onNewToken();
}
input.addEventListener("change", useToken);
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  useToken();
});

for (const button of document.querySelectorAll(".locked-line button")) {
  button.addEventListener("click", () => input.focus());
}
