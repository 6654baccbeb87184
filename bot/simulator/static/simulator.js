// The simulator page: personas, their chats, rich menus, actions and the clock panel.
// Everything the bot says arrives over the app's own (simulated) Messaging API; this page
// only sends what a LINE user would do (type, tap, follow, block) and shows the chats.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const state = {
  persona: null,       // key of the persona on screen
  lastSeq: 0,          // last conversation entry shown
  friendship: {},      // persona -> "friend" | "blocked" | "none", as the server knows it
  busy: false,
  customer: null,      // the customer persona last shown: who scans a claim code
};

function conversation(key) {
  return $(`.sim-conversation[data-persona="${key}"]`);
}

function personaButton(key) {
  return $(`.sim-persona[data-persona="${key}"]`);
}

function scrollChat() {
  const chat = $("#sim-chat");
  chat.scrollTop = chat.scrollHeight;
}

function showPersona(key) {
  state.persona = key;
  const button = personaButton(key);
  if (button.dataset.menu !== "staff") state.customer = key;
  $$(".sim-persona").forEach((b) => b.setAttribute("aria-selected", String(b === button)));
  $$(".sim-conversation").forEach((c) => { c.hidden = c.dataset.persona !== key; });
  $$(".sim-richmenu").forEach((m) => { m.hidden = m.dataset.menu !== button.dataset.menu; });
  $("#sim-who").textContent = button.dataset.name;
  const badge = $(".sim-badge", button);
  badge.hidden = true;
  badge.textContent = "0";
  updateFollow();
  scrollChat();
}

function updateFollow() {
  const standing = state.friendship[state.persona] || "none";
  const button = $("#sim-follow");
  button.textContent = {
    friend: "Block the shop (unfollow)",
    blocked: "Unblock the shop (follow)",
    none: "Add the shop as a friend (follow)",
  }[standing];
  button.dataset.friend = String(standing === "friend");
  $("#sim-phone").classList.toggle("sim-blocked", standing === "blocked");
}

function notice(key, text, kind = "info") {
  const note = document.createElement("div");
  note.className = `sim-notice sim-notice-${kind}`;
  note.textContent = text;
  conversation(key).append(note);
  scrollChat();
}

function addEntry(entry) {
  const box = conversation(entry.persona);
  if (!box) return;
  if (entry.sender === "system") {
    notice(entry.persona, entry.message.text);
    return;
  }
  const row = document.createElement("div");
  row.className = `sim-row sim-from-${entry.sender}`;
  row.dataset.seq = entry.seq;
  row.dataset.via = entry.via;
  row.innerHTML = entry.html; // rendered and escaped by the server (bot/simulator/flex_html.py)
  if (entry.sender === "bot") row.append(jsonView(entry.message));
  box.append(row);
  if (entry.persona !== state.persona) {
    const badge = $(".sim-badge", personaButton(entry.persona));
    badge.textContent = String(Number(badge.textContent) + 1);
    badge.hidden = false;
  }
}

function jsonView(message) {
  // what the bot sent to the Messaging API, for whoever designs or debugs the card
  const details = document.createElement("details");
  details.className = "sim-json";
  const summary = document.createElement("summary");
  summary.textContent = "JSON";
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(message, null, 2);
  details.append(summary, pre);
  return details;
}

async function poll() {
  const response = await fetch(`/simulator/api/chats?after=${state.lastSeq}`);
  if (!response.ok) return;
  const data = await response.json();
  for (const entry of data.entries) {
    if (entry.seq <= state.lastSeq) continue;
    addEntry(entry);
    state.lastSeq = entry.seq;
  }
  state.friendship = data.friendship;
  updateFollow();
  if (data.entries.length) scrollChat();
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

async function act(body) {
  const key = state.persona;
  try {
    await post(`/simulator/api/chats/${key}`, body);
  } catch (error) {
    notice(key, `Not sent: ${error.message}`, "error");
  }
  await poll();
}

function chatText(uri) {
  // https://line.me/R/oaMessage/@id/?text opens the chat with `text` typed
  const match = /^https:\/\/line\.me\/R\/oaMessage\/[^/]+\/\?(.*)$/.exec(uri);
  return match ? decodeURIComponent(match[1]) : null;
}

function pickDate(action) {
  const dialog = $("#sim-picker");
  const input = $("#sim-picker-input");
  const kinds = { date: "date", time: "time", datetime: "datetime-local" };
  const mode = kinds[action.mode] ? action.mode : "date";
  input.type = kinds[mode];
  // LINE also takes a lower-case "t" in datetimes; an HTML input wants "T"
  const value = (text) => (text || "").replace("t", "T");
  input.min = value(action.min);
  input.max = value(action.max);
  input.value = value(action.initial);
  $("#sim-picker-label").textContent = action.label || "Pick a date";
  dialog.onclose = () => {
    if (dialog.returnValue !== "ok" || !input.value) return;
    act({ type: "postback", data: action.data, params: { [mode]: input.value } });
  };
  dialog.showModal();
}

function runAction(action) {
  switch (action.type) {
    case "postback":
      return act({ type: "postback", data: action.data, displayText: action.displayText || "" });
    case "message":
      return act({ type: "text", text: action.text });
    case "datetimepicker":
      return pickDate(action);
    case "uri": {
      const typed = chatText(action.uri || "");
      if (typed !== null) return fillText(typed);
      if (/^https:\/\/line\.me\/R\/nv\/QRCodeReader/.test(action.uri || "")) {
        // LINE's app opens its QR code reader; here, each QR in a chat has its scan button
        return notice(state.persona, "LINE opens its QR code reader here. In the simulator, "
          + "tap the scan button under a QR code in a chat: the chat opens with its text typed.");
      }
      return window.open(action.uri, "_blank", "noopener");
    }
    case "clipboard":
      return navigator.clipboard?.writeText(action.clipboardText || "");
    default:
      return notice(state.persona, `The simulator does not play "${action.type}" actions.`);
  }
}

function fillText(text) {
  const input = $("#sim-text");
  input.value = text;
  input.focus();
}

function scan(text) {
  // a staff member scans a customer's QR with LINE: the chat opens with its text typed;
  // a claim code on the staff's screen is scanned by the customer last shown instead
  const customer = state.customer || ($(".sim-persona:not([data-menu='staff'])") || {}).dataset?.persona;
  const staff = $(".sim-persona[data-menu='staff']");
  if (text.startsWith("領取") && customer) showPersona(customer);
  else if (staff) showPersona(staff.dataset.persona);
  fillText(text);
}

async function runClock() {
  const result = $("#sim-clock-result");
  result.textContent = "running ...";
  try {
    const data = await post("/simulator/api/clock", { job: $("#sim-job").value, at: $("#sim-at").value });
    result.replaceChildren(...Object.entries(data.summaries).map(([job, summary]) => {
      const line = document.createElement("p");
      line.textContent = `${job}: ${summary}`;
      return line;
    }));
    const list = document.createElement("ul");
    list.className = "sim-pushes";
    for (const push of data.pushes) {
      const item = document.createElement("li");
      const who = push.persona ? personaButton(push.persona).dataset.name : push.user;
      item.textContent = `→ ${who}: ${push.alt}`;
      list.append(item);
    }
    if (!data.pushes.length) list.innerHTML = "<li>no pushes</li>";
    result.append(list);
  } catch (error) {
    result.textContent = `Not run: ${error.message}`;
  }
  await poll();
}

document.addEventListener("click", (event) => {
  const scanButton = event.target.closest(".sim-scan");
  if (scanButton) return scan(scanButton.dataset.scan);
  const target = event.target.closest(".sim-action");
  if (target) {
    event.preventDefault();
    return runAction(JSON.parse(target.dataset.action));
  }
  const bar = event.target.closest(".sim-chatbar");
  if (bar) return bar.parentElement.classList.toggle("sim-collapsed");
  const persona = event.target.closest(".sim-persona");
  if (persona) return showPersona(persona.dataset.persona);
  return undefined;
});

$("#sim-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#sim-text");
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  act({ type: "text", text });
});

$("#sim-follow").addEventListener("click", () => {
  const friend = state.friendship[state.persona] === "friend";
  return act({ type: friend ? "unfollow" : "follow" });
});

$("#sim-run").addEventListener("click", runClock);

showPersona($(".sim-persona").dataset.persona);
poll().then(() => setInterval(poll, 1000));
