// optinflow agent console: live lists, the open conversation, and the compose box.
// Plain JavaScript, no build step. Text from customers and agents is only ever put
// into the page with textContent (links are made from text nodes, http/https only),
// never parsed as HTML. Changes arrive as server-sent events from /console/events.
(function () {
  "use strict";

  const body = document.body;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const me = body.dataset.me || "";
  const waId = body.dataset.waId || null;
  const agentNames = JSON.parse(document.getElementById("agent-names")?.textContent || "{}");
  const baseTitle = document.title;
  // The server's clock decides the window: the page keeps the difference to its own.
  const skew = body.dataset.now ? Date.parse(body.dataset.now) - Date.now() : 0;
  function serverNow() { return Date.now() + (Number.isNaN(skew) ? 0 : skew); }

  // --- helpers -------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function agentName(email) {
    return agentNames[email] || email;
  }

  function formatTime(iso, format) {
    if (!iso) return "";
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    const sameDay = when.toDateString() === new Date().toDateString();
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (format === "short" && sameDay) return time;
    return when.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
  }

  function timeEl(iso, format, className) {
    const node = el("time", className || "");
    if (iso) node.dateTime = iso;
    node.dataset.format = format;
    node.textContent = formatTime(iso, format);
    return node;
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime][data-format]").forEach(function (node) {
      node.textContent = formatTime(node.getAttribute("datetime"), node.dataset.format);
    });
  }

  // The same colour class as the server's "tone" filter.
  function tone(key) {
    let sum = 0;
    for (const ch of key || "") sum += ch.codePointAt(0);
    return "tone-" + (sum % 6);
  }

  // Text with its http/https addresses as links; everything else stays text.
  const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;
  function linkified(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(LINK)) {
      let url = match[0].replace(/[.,;:!?)\]]+$/, "");
      fragment.append(document.createTextNode(text.slice(last, match.index)));
      const link = el("a", "msg-link", url);
      link.href = url;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      fragment.append(link);
      last = match.index + url.length;
    }
    fragment.append(document.createTextNode(text.slice(last)));
    return fragment;
  }

  function linkifyIn(root) {
    root.querySelectorAll(".msg-text").forEach(function (node) {
      if (node.dataset.linked) return;
      node.dataset.linked = "1";
      const text = node.textContent;
      if (LINK.test(text)) { LINK.lastIndex = 0; node.replaceChildren(linkified(text)); }
      LINK.lastIndex = 0;
    });
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function call(method, url, payload, headers) {
    const options = { method: method, headers: Object.assign({ Accept: "application/json" }, headers || {}), credentials: "same-origin" };
    if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
    if (payload !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    const response = await fetch(url, options);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (response.status === 401) {
      window.location.assign("/console/login?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("session expired");
    }
    return { status: response.status, data: data };
  }

  function conversationUrl(address) {
    return "/console/api/conversations/" + encodeURIComponent(address);
  }

  // --- conversation lists ------------------------------------------------------------------

  function showList(name) {
    document.querySelectorAll(".tab").forEach(function (tab) {
      const active = tab.dataset.list === name;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", active ? "true" : "false");
      tab.tabIndex = active ? 0 : -1;
    });
    document.querySelectorAll(".conv-list").forEach(function (list) {
      list.hidden = list.dataset.list !== name;
    });
  }

  const tabs = Array.from(document.querySelectorAll(".tab"));
  tabs.forEach(function (tab, index) {
    tab.tabIndex = tab.classList.contains("active") ? 0 : -1;
    tab.addEventListener("click", function () { showList(tab.dataset.list); });
    tab.addEventListener("keydown", function (event) {
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      showList(next.dataset.list);
      next.focus();
    });
  });

  function conversationItem(summary) {
    const link = el("a", "conv-item");
    link.href = "/console/conversations/" + encodeURIComponent(summary.wa_id);
    link.dataset.waId = summary.wa_id;
    if (summary.wa_id === waId) link.classList.add("active");
    const label = summary.name || summary.phone || summary.wa_id;
    const avatar = el("span", "avatar " + tone(summary.wa_id), label.trim().charAt(0).toUpperCase() || "?");
    avatar.setAttribute("aria-hidden", "true");
    link.append(avatar);
    const main = el("span", "conv-main");
    const top = el("span", "conv-top");
    top.append(el("span", "conv-name", label), timeEl(summary.last_message_at, "short", "conv-time"));
    const bottom = el("span", "conv-bottom");
    bottom.append(el("span", "conv-preview", summary.preview || ""));
    if (!summary.marketing_opt_in) {
      const tag = el("span", "tag tag-warn", "opted out");
      tag.title = "Opted out of marketing";
      bottom.append(tag);
    }
    bottom.append(el("span", "badge"));
    main.append(top, bottom);
    link.append(main);
    setUnread(link, summary.wa_id === waId ? 0 : summary.unread);
    setNumber(link, summary.number);
    return link;
  }

  // The business number the customer wrote to (the server sends one only when the
  // install has several): a row's label, and a line in the open conversation's header.
  const NUMBER_TITLE = "The business number the customer wrote to";

  function setNumber(item, number) {
    let label = item.querySelector(".conv-number");
    if (!number) { if (label) label.remove(); return; }
    if (!label) {
      label = el("span", "conv-number");
      label.title = NUMBER_TITLE;
      item.querySelector(".conv-main").append(label);
    }
    label.textContent = "To " + number;
  }

  function showNumber(number) {
    let line = document.getElementById("conv-number");
    if (!number) { if (line) line.remove(); return; }
    if (!line) {
      const title = document.querySelector(".conv-title");
      if (!title) return;
      line = el("p", "conv-number");
      line.id = "conv-number";
      line.title = NUMBER_TITLE + ": replies go out from it";
      title.append(line);
    }
    line.textContent = "To " + number;
  }

  function setUnread(item, count) {
    const badge = item.querySelector(".badge");
    badge.textContent = String(count);
    badge.hidden = !count;
    item.classList.toggle("has-unread", count > 0);
  }

  function unreadOf(item) {
    const badge = item.querySelector(".badge");
    return badge && !badge.hidden ? Number(badge.textContent) || 0 : 0;
  }

  function listEl(name) {
    return document.querySelector('.conv-list[data-list="' + name + '"]');
  }

  function itemsFor(address) {
    return Array.from(document.querySelectorAll('.conv-item[data-wa-id="' + CSS.escape(address) + '"]'));
  }

  function refreshCounts() {
    let total = 0;
    document.querySelectorAll(".conv-list").forEach(function (container) {
      const name = container.dataset.list;
      const items = container.querySelectorAll(".conv-item");
      let unread = 0;
      items.forEach(function (item) { unread += unreadOf(item); });
      const empty = container.querySelector(".empty");
      if (items.length && empty) empty.remove();
      if (!items.length && !empty) container.append(el("p", "empty", container.dataset.empty));
      const count = document.querySelector('[data-count="' + name + '"]');
      if (count) count.textContent = String(items.length);
      const badge = document.querySelector('[data-unread="' + name + '"]');
      if (badge) { badge.textContent = String(unread); badge.hidden = unread === 0; }
      if (name !== "bot") total += unread;
    });
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
  }

  function renderLists(lists) {
    Object.keys(lists).forEach(function (name) {
      const container = listEl(name);
      if (!container) return;
      container.replaceChildren.apply(container, lists[name].map(conversationItem));
    });
    refreshCounts();
  }

  // Puts the conversation's row in the list it belongs to now, from the server's row.
  async function placeConversation(address) {
    const answer = await call("GET", conversationUrl(address) + "/summary");
    if (answer.status !== 200) return;
    const summary = answer.data;
    itemsFor(address).forEach(function (item) { item.remove(); });
    const container = listEl(summary.list);
    if (container) container.prepend(conversationItem(summary));
    refreshCounts();
  }

  function moveToTop(item) {
    const container = item.parentElement;
    if (container && container.firstElementChild !== item) container.prepend(item);
  }

  // --- the open conversation ---------------------------------------------------------------

  const STATUS = {
    queued: ["◷", "Queued"], sending: ["◷", "Sending"], sent: ["✓", "Sent"],
    delivered: ["✓✓", "Delivered"], read: ["✓✓", "Read"], played: ["✓✓", "Played"],
    failed: ["!", "Failed"], skipped: ["–", "Not sent"],
  };

  function statusEl(status) {
    const [mark, label] = STATUS[status] || ["", status];
    const node = el("span", "status status-" + status);
    node.title = label;
    const markEl = el("span", "status-mark", mark);
    markEl.setAttribute("aria-hidden", "true");
    node.append(markEl, document.createTextNode(" " + label));
    return node;
  }

  function retryContent(message) {
    if (message.template) {
      return { template: { name: message.template.name, language: message.template.language, params: message.template.params || [] } };
    }
    return message.text !== null ? { text: message.text } : null;
  }

  function messageItem(message) {
    const outbound = message.direction === "outbound";
    const item = el("li", "msg " + (outbound ? "msg-out" : "msg-in"));
    if (message.status === "failed") item.classList.add("msg-failed");
    item.dataset.id = message.id;
    item.dataset.at = message.at || message.created_at;
    const bubble = el("div", "bubble");
    if (message.template) bubble.append(el("div", "msg-label", "Template · " + message.template.name));
    const text = el("div", "msg-text");
    text.append(linkified(message.text !== null ? message.text : "[" + message.kind + "]"));
    text.dataset.linked = "1";
    bubble.append(text);
    if (message.confirmed_opted_out) {
      bubble.append(el("div", "msg-confirm",
        "Sent to a contact who opted out · confirmed by " + agentName(message.confirmed_opted_out.by)));
    }
    if (message.failure) {
      bubble.append(el("div", "msg-failure",
        "Not delivered: " + message.failure.reason + " (" + message.failure.code + ")"));
    }
    const content = retryContent(message);
    if (outbound && message.status === "failed" && content && document.getElementById("composer")) {
      const retry = el("button", "button small retry", "Retry");
      retry.type = "button";
      retry.dataset.retry = JSON.stringify(content);
      bubble.append(retry);
    }
    const meta = el("div", "msg-meta");
    if (outbound) {
      const author = message.agent ? agentName(message.agent)
        : (message.channel ? message.channel.charAt(0).toUpperCase() + message.channel.slice(1) : "Outbound");
      meta.append(el("span", "msg-author", author));
    }
    meta.append(timeEl(message.at || message.created_at, "short"));
    if (outbound) meta.append(statusEl(message.status));
    bubble.append(meta);
    item.append(bubble);
    return item;
  }

  function eventItem(event) {
    const item = el("li", "event");
    item.dataset.at = event.at;
    let text;
    if (event.kind === "takeover") {
      text = agentName(event.agent) + " took over";
    } else {
      text = "Released to the bot" + (event.agent ? " by " + agentName(event.agent) : "") +
        (event.flow ? " · restart flow " + event.flow : "");
    }
    const span = el("span", "", text + " · ");
    span.append(timeEl(event.at, "short"));
    item.append(span);
    return item;
  }

  const timeline = document.getElementById("timeline");
  const marker = document.getElementById("new-marker");

  function atBottom() {
    return !timeline || timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
  }

  function scrollToEnd() {
    if (timeline) timeline.scrollTop = timeline.scrollHeight;
    if (marker) marker.hidden = true;
  }

  // Puts ``item`` where its time belongs (a late message goes where it was written).
  function placeInTimeline(item) {
    const empty = timeline.querySelector(".timeline-empty");
    if (empty) empty.remove();
    const at = Date.parse(item.dataset.at);
    let before = null;
    for (let node = timeline.lastElementChild; node; node = node.previousElementSibling) {
      if (!node.dataset.at) break;
      if (Date.parse(node.dataset.at) <= at) break;
      before = node;
    }
    timeline.insertBefore(item, before);
  }

  // A message added or changed; true when it is new on this page.
  function upsertMessage(message) {
    if (!timeline) return false;
    const existing = timeline.querySelector('.msg[data-id="' + CSS.escape(message.id) + '"]');
    const item = messageItem(message);
    if (existing) { existing.replaceWith(item); return false; }
    placeInTimeline(item);
    return true;
  }

  function showNew(message) {
    const ownMessage = message.direction === "outbound" && message.agent === me;
    if (atBottom() || ownMessage) scrollToEnd();
    else if (marker) marker.hidden = false;
  }

  if (marker) marker.addEventListener("click", scrollToEnd);
  if (timeline) {
    timeline.addEventListener("scroll", function () { if (atBottom() && marker) marker.hidden = true; });
  }

  async function loadEarlier(button) {
    const first = timeline.querySelector(".msg[data-id]");
    button.disabled = true;
    const url = conversationUrl(waId) + "/messages" + (first ? "?before=" + encodeURIComponent(first.dataset.id) : "");
    const answer = await call("GET", url);
    if (answer.status !== 200) { button.disabled = false; return; }
    const height = timeline.scrollHeight;
    const known = new Set(Array.from(timeline.querySelectorAll(".event")).map(function (node) { return node.dataset.at; }));
    const entries = answer.data.messages.map(function (m) { return [m.at || m.created_at, 1, messageItem(m)]; })
      .concat(answer.data.events.filter(function (e) { return !known.has(e.at); })
        .map(function (e) { return [e.at, 0, eventItem(e)]; }));
    entries.sort(function (a, b) {
      const ta = Date.parse(a[0]), tb = Date.parse(b[0]);
      return ta !== tb ? ta - tb : a[1] - b[1];
    });
    const holder = button.closest("li");
    let anchor = holder;
    entries.forEach(function (entry) { anchor.after(entry[2]); anchor = entry[2]; });
    if (answer.data.more) { button.disabled = false; } else { holder.remove(); }
    timeline.scrollTop += timeline.scrollHeight - height;
  }

  const earlier = document.getElementById("load-earlier");
  if (earlier) earlier.addEventListener("click", function () { loadEarlier(earlier); });

  // --- the 24-hour window --------------------------------------------------------------------

  function describeSpan(ms) {
    const minutes = Math.floor(ms / 60000);
    if (minutes < 1) return "less than a minute";
    if (minutes < 60) return minutes + " min";
    const hours = Math.floor(minutes / 60), rest = minutes % 60;
    if (hours < 48) return rest ? hours + " h " + rest + " min" : hours + " h";
    return Math.floor(hours / 24) + " days";
  }

  const banner = document.getElementById("window-banner");

  function showWindow(untilIso) {
    if (!banner) return;
    if (untilIso !== undefined) banner.dataset.until = untilIso || "";
    const until = banner.dataset.until ? Date.parse(banner.dataset.until) : NaN;
    let open = false, text;
    if (Number.isNaN(until)) {
      text = "The customer has not written yet: only templates can be sent.";
    } else if (until > serverNow()) {
      open = true;
      text = "The 24-hour window is open for " + describeSpan(until - serverNow()) + " more: free text can be sent.";
    } else {
      text = "The 24-hour window closed " + describeSpan(serverNow() - until) +
        " ago: only templates can be sent until the customer writes again.";
    }
    document.getElementById("window-text").textContent = text;
    banner.classList.toggle("window-open", open);
    banner.classList.toggle("window-closed", !open);
    const composer = document.getElementById("composer");
    if (composer && composer.dataset.windowOpen !== String(open)) {
      composer.dataset.windowOpen = String(open);
      setTextEnabled(open);
    }
  }

  // --- reading -------------------------------------------------------------------------------

  let readTimer = null;
  function markRead() {
    if (!waId || document.hidden) return;
    window.clearTimeout(readTimer);
    readTimer = window.setTimeout(function () {
      call("POST", conversationUrl(waId) + "/read", {}).catch(function () { /* next time */ });
    }, 300);
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) markRead(); });

  // --- live updates --------------------------------------------------------------------------

  function onMessage(data) {
    const message = data.message;
    const inbound = message.direction === "inbound";
    const numbered = "number" in data; // a customer's message may move it to another number
    if (data.wa_id === waId) {
      if (upsertMessage(message)) { showNew(message); if (inbound) markRead(); }
      if (data.window_open_until !== undefined) showWindow(data.window_open_until);
      if (numbered) showNumber(data.number);
    }
    const items = itemsFor(data.wa_id);
    if (!items.length && data.added) { placeConversation(data.wa_id); return; }
    items.forEach(function (item) {
      if (!data.added) return;
      if (numbered) setNumber(item, data.number);
      item.querySelector(".conv-preview").textContent = message.text || "";
      const time = item.querySelector(".conv-time");
      time.dateTime = message.at || message.created_at;
      time.textContent = formatTime(time.dateTime, "short");
      if (inbound && (data.wa_id !== waId || document.hidden)) setUnread(item, unreadOf(item) + 1);
      moveToTop(item);
    });
    refreshCounts();
  }

  // What else the page shows of this conversation (who has it, whether it is resolved)
  // follows this; without ``state`` (changes were missed) it loads everything again.
  function conversationChanged(state) {
    document.dispatchEvent(new CustomEvent("conversationchange", { detail: state || null }));
  }

  function onConversation(data) {
    placeConversation(data.wa_id);
    if (data.wa_id !== waId) return;
    if ("number" in data) showNumber(data.number);
    conversationChanged(data);
    if (data.owner !== body.dataset.owner || (data.agent || "") !== (body.dataset.agent || "")) {
      refreshHands();
    }
  }

  // A private note, an assignment, resolved or reopened: the desk's script places it.
  function onEntry(data) {
    if (data.wa_id !== waId) return;
    document.dispatchEvent(new CustomEvent("deskentry", { detail: data.entry }));
  }

  function onRead(data) {
    if (data.agent !== me) return;
    itemsFor(data.wa_id).forEach(function (item) { setUnread(item, 0); });
    refreshCounts();
  }

  // The conversation changed hands: the header's buttons and the compose box follow,
  // without a reload (a draft in the compose box stays when the box stays).
  async function refreshHands() {
    const response = await fetch(window.location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.body;
    body.dataset.owner = fresh.dataset.owner || "";
    body.dataset.agent = fresh.dataset.agent || "";
    const header = document.querySelector(".conv-header"), newHeader = doc.querySelector(".conv-header");
    if (header && newHeader) { header.replaceWith(document.adoptNode(newHeader)); localizeTimes(document.querySelector(".conv-header")); }
    const composer = document.querySelector(".composer"), newComposer = doc.querySelector(".composer");
    const hadBox = composer && composer.id === "composer", hasBox = newComposer && newComposer.id === "composer";
    if (composer && newComposer && hadBox !== hasBox) {
      composer.replaceWith(document.adoptNode(newComposer));
      bindComposer();
    }
    const flash = document.getElementById("flash");
    if (flash) flash.remove();
  }

  async function resync() {
    const lists = await call("GET", "/console/api/conversations");
    if (lists.status === 200) renderLists(lists.data);
    if (!waId || !timeline) return;
    const view = await call("GET", conversationUrl(waId));
    if (view.status !== 200) return;
    view.data.messages.forEach(upsertMessage);
    showWindow(view.data.window_open_until);
    showNumber(view.data.number);
    conversationChanged(); // changes were missed: the desk's entries may be among them
    if (view.data.owner !== body.dataset.owner || (view.data.agent || "") !== (body.dataset.agent || "")) refreshHands();
  }

  function listen() {
    if (!window.EventSource) return;
    const source = new EventSource("/console/events?after=" + encodeURIComponent(body.dataset.liveAfter || ""));
    function handle(handler) {
      return function (event) {
        let data;
        try { data = JSON.parse(event.data); } catch (_) { return; }
        handler(data);
      };
    }
    source.addEventListener("message", handle(onMessage));
    source.addEventListener("conversation", handle(onConversation));
    source.addEventListener("entry", handle(onEntry));
    source.addEventListener("read", handle(onRead));
    source.addEventListener("resync", function () { resync(); });
    source.addEventListener("open", function () { body.classList.remove("offline"); });
    source.addEventListener("error", function () { body.classList.add("offline"); });
  }

  // --- compose box -------------------------------------------------------------------------

  let textForm, templateForm, select, preview, params, confirmedNote, sendTemplate, errorBox;
  const dialog = document.getElementById("optout-dialog");
  let confirmed = false;
  let sending = false;
  let arrowing = false; // a key that moves through the closed list is down

  function showError(message) {
    if (!errorBox) return;
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function setMode(mode) {
    document.querySelectorAll(".mode").forEach(function (button) {
      const active = button.dataset.mode === mode;
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", active ? "true" : "false");
    });
    document.querySelectorAll(".mode-panel").forEach(function (panel) {
      panel.hidden = panel.dataset.mode !== mode;
    });
    showError("");
  }

  function setTextEnabled(open) {
    if (!textForm) return;
    const area = textForm.querySelector("textarea");
    area.disabled = !open;
    area.placeholder = open ? "Write a message…" : "The 24-hour window is closed: send a template.";
    textForm.querySelector('button[type="submit"]').disabled = !open || sending;
  }

  function chosen() {
    return select && select.value ? select.selectedOptions[0] : null;
  }

  function templateOf(option) {
    try { return JSON.parse(option.dataset.template); } catch (_) {
      return { body: option.dataset.body, params: Number(option.dataset.params), buttons: [] };
    }
  }

  function resetTemplate() {
    confirmed = false;
    select.value = "";
    preview.hidden = true;
    params.replaceChildren();
    confirmedNote.hidden = true;
    sendTemplate.disabled = true;
    templateForm.querySelector('input[name="idempotency_key"]').value = "";
  }

  function fillPreview(option) {
    const template = templateOf(option);
    const values = Array.from(params.querySelectorAll("input")).map(function (input) { return input.value; });
    const bodyText = template.body.replace(/\{\{(\d+)\}\}/g, function (whole, index) {
      return values[Number(index) - 1] || whole;
    });
    const header = document.getElementById("tp-header"), footer = document.getElementById("tp-footer");
    const buttons = document.getElementById("tp-buttons");
    header.textContent = template.header || ""; header.hidden = !template.header;
    document.getElementById("tp-body").textContent = bodyText;
    footer.textContent = template.footer || ""; footer.hidden = !template.footer;
    buttons.replaceChildren.apply(buttons, (template.buttons || []).map(function (text) { return el("li", "", text); }));
    buttons.hidden = !(template.buttons || []).length;
    preview.hidden = false;
  }

  function showTemplate(option, focusFirst) {
    const template = templateOf(option);
    const fields = [];
    for (let i = 1; i <= Number(template.params || option.dataset.params); i++) {
      const label = el("label", "", "Parameter {{" + i + "}}");
      const input = el("input");
      input.name = "param";
      input.required = true;
      input.dataset.index = String(i);
      input.addEventListener("input", function () { fillPreview(option); });
      label.append(input);
      fields.push(label);
    }
    params.replaceChildren.apply(params, fields);
    fillPreview(option);
    confirmedNote.hidden = !confirmed;
    sendTemplate.disabled = false;
    const first = params.querySelector("input");
    if (first && focusFirst) first.focus();
  }

  // Opens the warning; resolves true when the agent confirms, false when they cancel.
  function askConfirmation(reason) {
    return new Promise(function (resolve) {
      document.getElementById("optout-reason").textContent = reason;
      dialog.returnValue = "";
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "confirm");
      });
      dialog.showModal();
    });
  }

  // The agent settled on the chosen template: a marketing one to a contact who opted
  // out asks for confirmation now (not while arrowing through the list).
  async function commitChoice() {
    const option = chosen();
    if (!option || confirmed || !option.dataset.confirm) return true;
    if (!(await askConfirmation(option.dataset.confirm))) {
      resetTemplate();
      select.focus();
      return false;
    }
    confirmed = true;
    showTemplate(option, true);
    return true;
  }

  function onTemplateChanged() {
    showError("");
    confirmed = false;
    const option = chosen();
    if (!option) { resetTemplate(); return; }
    templateForm.querySelector('input[name="idempotency_key"]').value = "";
    showTemplate(option, false);
    if (!arrowing) commitChoice().then(function (ok) { if (ok && !option.dataset.confirm) focusFirstParam(); });
  }

  function focusFirstParam() {
    const first = params.querySelector("input");
    if (first) first.focus();
  }

  function describeError(answer) {
    const error = (answer.data && answer.data.error) || {};
    if (error.fields && error.fields.length) {
      return error.fields.map(function (f) { return f.field + ": " + f.message; }).join("; ");
    }
    return error.message || "The message could not be sent (" + answer.status + ").";
  }

  // Sends one composed message; ``key`` stays the same for every try of this intent.
  async function send(payload, key) {
    const url = conversationUrl(waId) + "/messages";
    const headers = { "Idempotency-Key": key };
    let answer;
    try {
      answer = await call("POST", url, payload, headers);
      const code = answer.data && answer.data.error && answer.data.error.code;
      if (answer.status === 409 && code === "marketing_opt_out_confirmation_required") {
        if (!(await askConfirmation(answer.data.error.message))) return false;
        answer = await call("POST", url, Object.assign({}, payload, { confirm_opted_out: true }), headers);
      }
    } catch (_) {
      showError("The server could not be reached. Your message is kept: press Send again.");
      return false;
    }
    if (answer.status !== 202) { showError(describeError(answer)); return false; }
    showError("");
    upsertMessage(answer.data);
    scrollToEnd();
    return true;
  }

  async function guarded(form, work) {
    if (sending) return;
    sending = true;
    const buttons = form.querySelectorAll('button[type="submit"]');
    buttons.forEach(function (button) { button.disabled = true; });
    form.setAttribute("aria-busy", "true");
    try { await work(); } finally {
      sending = false;
      form.removeAttribute("aria-busy");
      buttons.forEach(function (button) { button.disabled = false; });
      if (form === textForm) setTextEnabled(document.getElementById("composer").dataset.windowOpen === "true");
      if (form === templateForm) sendTemplate.disabled = !chosen();
    }
  }

  function keyOf(form) {
    const field = form.querySelector('input[name="idempotency_key"]');
    if (!field.value) field.value = newKey();
    return field.value;
  }

  function bindComposer() {
    const composer = document.getElementById("composer");
    errorBox = document.getElementById("composer-error");
    textForm = document.getElementById("text-form");
    templateForm = document.getElementById("template-form");
    select = document.getElementById("template-select");
    preview = document.getElementById("template-preview");
    params = document.getElementById("template-params");
    confirmedNote = document.getElementById("confirmed-note");
    sendTemplate = document.getElementById("send-template");
    if (!composer) return;
    document.querySelectorAll(".mode").forEach(function (button) {
      button.addEventListener("click", function () { setMode(button.dataset.mode); });
    });
    const area = textForm.querySelector("textarea");
    area.addEventListener("input", function () {
      textForm.querySelector('input[name="idempotency_key"]').value = ""; // a new intent
    });
    textForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!area.value.trim()) return;
      guarded(textForm, async function () {
        const key = keyOf(textForm);
        if (await send({ text: area.value }, key)) {
          area.value = "";
          textForm.querySelector('input[name="idempotency_key"]').value = "";
        }
      });
    });
    area.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault();
      if (event.repeat || sending) return;
      textForm.requestSubmit();
    });
    select.addEventListener("keydown", function (event) {
      if (["ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"].includes(event.key)) {
        arrowing = true;
      } else if (event.key === "Enter" || event.key === " ") {
        if (chosen() && !confirmed && chosen().dataset.confirm) { event.preventDefault(); commitChoice(); }
      }
    });
    // Chromium changes a closed list's choice (and fires change) while the key is down,
    // so the key coming up ends the arrowing at once: a timer here could still be
    // pending when a choice made another way (a click, a script) arrives.
    select.addEventListener("keyup", function () { arrowing = false; });
    select.addEventListener("blur", function () { arrowing = false; commitChoice(); });
    select.addEventListener("change", onTemplateChanged);
    templateForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const option = chosen();
      if (!option) return;
      guarded(templateForm, async function () {
        if (!(await commitChoice())) return;
        const values = Array.from(params.querySelectorAll("input")).map(function (i) { return i.value; });
        const payload = {
          template: { name: option.dataset.name, language: option.dataset.language, params: values },
        };
        if (confirmed) payload.confirm_opted_out = true;
        if (await send(payload, keyOf(templateForm))) resetTemplate();
      });
    });
  }

  // A failed message sent again: a new attempt through the same compose path.
  document.addEventListener("click", async function (event) {
    const button = event.target.closest ? event.target.closest(".retry") : null;
    if (!button || !waId) return;
    button.disabled = true;
    let content;
    try { content = JSON.parse(button.dataset.retry); } catch (_) { return; }
    if (button.dataset.key === undefined) button.dataset.key = newKey();
    if (!(await send(content, button.dataset.key))) button.disabled = false;
  });

  // --- contact panel -------------------------------------------------------------------------

  document.addEventListener("consentchange", function (event) {
    const optedOut = !event.detail.marketing_opt_in;
    document.querySelectorAll("[data-notice]").forEach(function (node) { node.hidden = !optedOut; });
    if (optedOut && !document.querySelector("[data-notice]") && banner) {
      const notice = (event.detail.notices || [])[0];
      if (notice) {
        const warn = el("div", "banner banner-warn");
        warn.dataset.notice = notice.code;
        warn.setAttribute("role", "status");
        warn.append(el("strong", "", "Marketing opt-out. "), document.createTextNode(notice.message));
        banner.before(warn);
      }
    }
    const reason = (event.detail.notices || [])[0];
    document.querySelectorAll('#template-select option[data-category="marketing"]').forEach(function (option) {
      if (optedOut) option.dataset.confirm = reason ? reason.message : "The contact opted out of marketing.";
      else delete option.dataset.confirm;
    });
    if (select && chosen()) { confirmed = false; onTemplateChanged(); }
    itemsFor(waId || "").forEach(function (item) {
      const tag = item.querySelector(".tag-warn");
      if (tag) tag.hidden = !optedOut;
    });
  });

  // On a phone or a narrow window the contact panel opens over the conversation.
  function showContact(open) {
    body.classList.toggle("show-contact", open);
    const toggle = document.getElementById("contact-toggle");
    if (toggle) toggle.setAttribute("aria-expanded", String(open));
    const target = open ? document.querySelector("#contact-panel [data-consent-change]") : toggle;
    if (target) target.focus();
  }
  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    if (event.target.closest("#contact-toggle")) showContact(!body.classList.contains("show-contact"));
    else if (event.target.closest("#contact-close")) showContact(false);
  });

  // --- start ---------------------------------------------------------------------------------

  localizeTimes(document);
  linkifyIn(document);
  bindComposer();
  if (timeline) scrollToEnd();
  if (banner) { showWindow(); window.setInterval(showWindow, 30000); }
  refreshCounts();
  listen();
})();
