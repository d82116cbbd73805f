// The gatedrec page: pick a user or type a history, see the history and the recommendations with their
// modality shares and the history items behind each score. Plain JavaScript against the JSON API.
"use strict";

const COLOURS = ["#3b7dd8", "#e08a1e", "#3aa564", "#b04fc1", "#c23b3b"];
const byId = (id) => document.getElementById(id);

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showError(message) {
  const box = byId("error");
  box.textContent = message;
  box.hidden = !message;
}

function k() {
  return byId("k-more").checked ? 20 : 10;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function sharesBar(shares) {
  const wrap = element("div", "share-wrap");
  const bar = element("div", "shares");
  const legend = element("div", "share-legend");
  Object.entries(shares).forEach(([name, share], index) => {
    const part = element("span");
    part.style.width = `${(share * 100).toFixed(1)}%`;
    part.style.background = COLOURS[index % COLOURS.length];
    part.title = `${name} ${(share * 100).toFixed(1)}%`;
    bar.appendChild(part);
  });
  legend.textContent = Object.entries(shares).map(([name, share]) => `${name} ${(share * 100).toFixed(0)}%`).join(" · ");
  wrap.append(bar, legend);
  return wrap;
}

function card(entry) {
  const item = element("li", "card");
  item.dataset.item = entry.item;
  if (entry.image) {
    const image = element("img");
    image.src = `/v1/items/${encodeURIComponent(entry.item)}/image`;
    image.addEventListener("error", () => image.remove());
    image.alt = entry.title || entry.item;
    item.appendChild(image);
  }
  item.appendChild(element("div", "title", entry.title || entry.item));
  item.appendChild(element("div", "id", `id ${entry.item}${entry.added ? " (added live)" : ""}`));
  if (entry.score !== undefined) item.appendChild(element("div", "score", `score ${entry.score.toFixed(4)}`));
  if (entry.shares) item.appendChild(sharesBar(entry.shares));
  if (entry.because && entry.because.length) {
    item.appendChild(element("div", "id", "because you liked"));
    const list = element("ul", "because");
    entry.because.forEach((reason) => {
      list.appendChild(element("li", null, `${reason.title || reason.item} (+${reason.contribution.toFixed(4)})`));
    });
    item.appendChild(list);
  }
  return item;
}

function show(listId, sectionId, entries) {
  const list = byId(listId);
  list.replaceChildren(...entries.map(card));
  byId(sectionId).hidden = false;
}

async function recommendUser(user) {
  showError("");
  try {
    const details = await api(`/v1/users/${encodeURIComponent(user)}`);
    byId("history-title").textContent = `History of user ${user}`;
    show("history", "history-section", details.history);
    const answer = await api(`/v1/users/${encodeURIComponent(user)}/recommendations?k=${k()}&explain=true`);
    show("recommendations", "recommendations-section", answer.items);
  } catch (error) {
    showError(error.message);
  }
}

async function recommendHistory(items) {
  showError("");
  try {
    const history = await Promise.all(items.map((item) => api(`/v1/items/${encodeURIComponent(item)}`)));
    byId("history-title").textContent = "Your history";
    show("history", "history-section", history);
    const answer = await api("/v1/recommendations", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ history: items, k: k(), explain: true }),
    });
    show("recommendations", "recommendations-section", answer.items);
  } catch (error) {
    showError(error.message);
  }
}

function historyIds() {
  return byId("history-input").value.split(",").map((id) => id.trim()).filter((id) => id);
}

async function search(query) {
  const results = byId("search-results");
  const page = await api(`/v1/items?limit=10&query=${encodeURIComponent(query)}`);
  const rows = await Promise.all(page.ids.map((item) => api(`/v1/items/${encodeURIComponent(item)}`)));
  results.replaceChildren(...rows.map((row) => {
    const line = element("li", null, `${row.title || row.item} `);
    const add = element("button", null, "add to history");
    add.type = "button";
    add.addEventListener("click", () => {
      byId("history-input").value = [...historyIds(), row.item].join(", ");
    });
    line.appendChild(add);
    return line;
  }));
}

async function start() {
  try {
    const info = await api("/v1/info");
    byId("run-info").textContent =
      `${info.model}: ${info.n_users.toLocaleString()} users, ${info.n_items.toLocaleString()} items` +
      ` (${info.items_added} added live), modalities ${Object.keys(info.modalities).join(", ") || "none"}`;
    const users = await api("/v1/users?limit=200");
    byId("user-list").replaceChildren(...users.ids.map((id) => Object.assign(element("option"), { value: id })));
    byId("random-user").addEventListener("click", async () => {
      const offset = Math.floor(Math.random() * users.total);
      const page = await api(`/v1/users?offset=${offset}&limit=1`);
      byId("user-input").value = page.ids[0];
      recommendUser(page.ids[0]);
    });
  } catch (error) {
    showError(error.message);
  }
  byId("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    recommendUser(byId("user-input").value.trim());
  });
  byId("history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    recommendHistory(historyIds());
  });
  byId("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search(byId("search-input").value.trim()).catch((error) => showError(error.message));
  });
}

start();
