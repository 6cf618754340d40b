// rootcause console: live updates, buttons and forms that call the JSON API, keyboard
// navigation. Plain ES module, no dependencies. Every page is rendered by the server; this
// script only fetches it again and swaps the content, so escaping stays on the server.

const main = () => document.getElementById("main");
const notice = document.getElementById("notice");

function say(text, isError = false) {
  notice.textContent = text;
  notice.classList.toggle("error", isError);
}

// The user is typing or has edited a form: do not replace the page under them.
function busy() {
  const active = document.activeElement;
  const typing = active && main().contains(active) && active.matches("input, textarea, select");
  return typing || main().querySelector("form[data-dirty]") !== null;
}

let refreshing = false;
async function refresh(force = false) {
  if (refreshing) return;
  if (!force && busy()) {
    notice.replaceChildren("This page has an update. ");
    const show = document.createElement("button");
    show.type = "button";
    show.textContent = "Show it";
    show.addEventListener("click", () => { say(""); refresh(true); });
    notice.append(show);
    return;
  }
  refreshing = true;
  try {
    const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (new URL(response.url).pathname === "/login") { location.href = response.url; return; }
    if (!response.ok) return;
    const next = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("main");
    if (next) {
      main().replaceChildren(...next.childNodes);
      wire();
    }
  } finally {
    refreshing = false;
  }
}

async function problem(response) {
  try {
    const body = await response.json();
    const where = (body.problems || []).map((p) => `${p.path}: ${p.message}`).join("; ");
    return `${response.status} ${body.code}: ${body.message}${where ? ` (${where})` : ""}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await problem(response));
  return response;
}

// The fields of a form as JSON: empty fields left out, data-type="bool" as true/false.
function fields(form) {
  const body = {};
  for (const element of form.elements) {
    if (!element.name || element.value === "") continue;
    body[element.name] = element.dataset.type === "bool" ? element.value === "true" : element.value;
  }
  return body;
}

// On a narrow screen the map scrolls sideways: start with the top hypothesis in view.
function centreMap() {
  const scroller = document.querySelector(".graph .scroll");
  const top = scroller?.querySelector("g.node.top rect");
  if (!top || scroller.scrollWidth <= scroller.clientWidth) return;
  const box = top.getBBox();
  scroller.scrollLeft = box.x + box.width / 2 - scroller.clientWidth / 2;
}

function wire() {
  centreMap();
  for (const button of document.querySelectorAll("button[data-post]")) {
    if (button.dataset.wired) continue;
    button.dataset.wired = "1";
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await post(button.dataset.post, JSON.parse(button.dataset.body || "{}"));
        say(`${button.textContent}: done.`);
        await refresh(true);
      } catch (error) {
        say(error.message, true);
        button.disabled = false;
      }
    });
  }
  for (const form of document.querySelectorAll("form[data-api]")) {
    if (form.dataset.wired) continue;
    form.dataset.wired = "1";
    form.addEventListener("input", () => { form.dataset.dirty = "1"; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      try {
        await post(form.dataset.api, fields(form));
        delete form.dataset.dirty;
        say(`${submit.textContent}: recorded.`);
        document.activeElement?.blur();
        await refresh(true);
      } catch (error) {
        say(error.message, true);
        submit.disabled = false;
      }
    });
  }
  const rows = [...document.querySelectorAll("tr[data-href]")];
  for (const row of rows) {
    if (row.dataset.wired) continue;
    row.dataset.wired = "1";
    row.addEventListener("click", (event) => {
      if (!event.target.closest("a, button")) location.href = row.dataset.href;
    });
  }
}

// j / k move through the incident list, Enter opens, / goes to the filter.
let selected = -1;
document.addEventListener("keydown", (event) => {
  if (event.target.matches("input, textarea, select") || event.altKey || event.ctrlKey || event.metaKey) return;
  const rows = [...document.querySelectorAll("tr[data-href]")];
  if (event.key === "/") {
    const filter = document.querySelector(".filters input, .filters select");
    if (filter) { event.preventDefault(); filter.focus(); }
    return;
  }
  if (!rows.length) return;
  if (event.key === "j" || event.key === "k") {
    selected = Math.max(0, Math.min(rows.length - 1, selected + (event.key === "j" ? 1 : -1)));
    rows.forEach((row, i) => row.classList.toggle("selected", i === selected));
    rows[selected].querySelector("a")?.focus();
  } else if (event.key === "Enter" && selected >= 0 && !event.target.matches("a, button")) {
    location.href = rows[selected].dataset.href;
  }
});

// Sign in: trade the token for a session cookie, then go back.
const login = document.getElementById("login");
if (login) {
  login.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = document.getElementById("token").value.trim();
    const response = await fetch("/api/v1/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { Authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    if (response.ok) location.href = login.dataset.next || "/";
    else say(await problem(response), true);
  });
}

// Live: the incident's own stream, or the list's. The stream opens once the page has been open
// a few seconds, so a page only glanced at (paging through incidents with j/k, a crawler, a
// headless renderer that waits for the network to go quiet) holds no connection; the page is
// fetched again when the stream opens, so nothing that changed in between is missed.
const LIVE_AFTER_MS = 6000;
const live = document.body.dataset.live;
if (live) setTimeout(() => follow(live), LIVE_AFTER_MS);

function follow(address) {
  const source = new EventSource(address);
  const header = () => document.querySelector("header.incident");
  // A burst of changes is one refresh, and a storm's rankings at most one every two seconds.
  let pending = null;
  let last = 0;
  const soon = () => {
    if (pending) return;
    const wait = Math.max(300, last + 2000 - Date.now());
    pending = setTimeout(() => { pending = null; last = Date.now(); refresh(); }, wait);
  };
  source.addEventListener("open", soon);
  source.addEventListener("changed", soon);
  source.addEventListener("hypotheses", (event) => {
    const revision = JSON.parse(event.data).revision;
    if (String(revision) !== header()?.dataset.revision) soon();
  });
  source.addEventListener("incident", soon);
  source.addEventListener("end", (event) => {
    source.close();
    location.href = `/incidents/${JSON.parse(event.data).merged_into}`;
  });
}

wire();
