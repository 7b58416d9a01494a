// optinflow agent console: live lists, the open conversation, and the compose box.
// Plain JavaScript, no build step. Text from customers and agents is only ever put
// into the page with textContent, never parsed as HTML.
(function () {
  "use strict";

  const body = document.body;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const waId = body.dataset.waId || null;
  const agentNames = JSON.parse(document.getElementById("agent-names")?.textContent || "{}");
  const LIST_POLL_MS = 4000;
  const CONVERSATION_POLL_MS = 3000;

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

  async function call(method, url, payload) {
    const options = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
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

  // --- conversation lists ------------------------------------------------------------------

  function showList(name) {
    document.querySelectorAll(".tab").forEach(function (tab) {
      const active = tab.dataset.list === name;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", active ? "true" : "false");
    });
    document.querySelectorAll(".conv-list").forEach(function (list) {
      list.hidden = list.dataset.list !== name;
    });
  }

  document.querySelectorAll(".tab").forEach(function (tab) {
    tab.addEventListener("click", function () { showList(tab.dataset.list); });
  });

  function conversationItem(summary) {
    const link = el("a", "conv-item");
    link.href = "/console/conversations/" + encodeURIComponent(summary.wa_id);
    link.dataset.waId = summary.wa_id;
    if (summary.unread) link.classList.add("has-unread");
    if (summary.wa_id === waId) link.classList.add("active");
    const label = summary.name || summary.phone || summary.wa_id;
    link.append(el("span", "avatar " + tone(summary.wa_id), label.trim().charAt(0).toUpperCase() || "?"));
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
    const badge = el("span", "badge", String(summary.unread));
    badge.hidden = !summary.unread;
    bottom.append(badge);
    main.append(top, bottom);
    link.append(main);
    return link;
  }

  function renderLists(lists) {
    Object.keys(lists).forEach(function (name) {
      const rows = lists[name];
      const container = document.querySelector('.conv-list[data-list="' + name + '"]');
      if (!container) return;
      const items = rows.map(conversationItem);
      if (items.length === 0) items.push(el("p", "empty", container.dataset.empty));
      container.replaceChildren.apply(container, items);
      const count = document.querySelector('[data-count="' + name + '"]');
      if (count) count.textContent = String(rows.length);
      const unread = rows.reduce(function (sum, row) { return sum + row.unread; }, 0);
      const badge = document.querySelector('[data-unread="' + name + '"]');
      if (badge) { badge.textContent = String(unread); badge.hidden = unread === 0; }
    });
  }

  async function pollLists() {
    try {
      const answer = await call("GET", "/console/api/conversations");
      if (answer.status === 200) renderLists(answer.data);
    } catch (_) { /* the next poll tries again */ }
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

  function messageItem(message) {
    const outbound = message.direction === "outbound";
    const item = el("li", "msg " + (outbound ? "msg-out" : "msg-in"));
    if (message.status === "failed") item.classList.add("msg-failed");
    item.dataset.id = message.id;
    const bubble = el("div", "bubble");
    if (message.template) bubble.append(el("div", "msg-label", "Template · " + message.template.name));
    bubble.append(el("div", "msg-text", message.text !== null ? message.text : "[" + message.kind + "]"));
    if (message.confirmed_opted_out) {
      bubble.append(el("div", "msg-confirm",
        "Sent to a contact who opted out · confirmed by " + agentName(message.confirmed_opted_out.by)));
    }
    if (message.failure) {
      bubble.append(el("div", "msg-failure",
        "Not delivered: " + message.failure.reason + " (" + message.failure.code + ")"));
    }
    const meta = el("div", "msg-meta");
    if (outbound) {
      const author = message.agent ? agentName(message.agent)
        : (message.channel ? message.channel.charAt(0).toUpperCase() + message.channel.slice(1) : "Outbound");
      meta.append(el("span", "msg-author", author));
    }
    meta.append(timeEl(message.created_at, "short"));
    if (outbound) meta.append(statusEl(message.status));
    bubble.append(meta);
    item.append(bubble);
    return item;
  }

  function eventItem(event) {
    const item = el("li", "event");
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

  function renderTimeline(view) {
    const timeline = document.getElementById("timeline");
    if (!timeline) return;
    const entries = view.messages.map(function (m) { return [m.created_at, 1, messageItem(m)]; })
      .concat(view.events.map(function (e) { return [e.at, 0, eventItem(e)]; }));
    entries.sort(function (a, b) {
      const ta = Date.parse(a[0]), tb = Date.parse(b[0]);
      return ta !== tb ? ta - tb : a[1] - b[1];
    });
    const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
    const items = entries.map(function (entry) { return entry[2]; });
    if (items.length === 0) items.push(el("li", "timeline-empty", "No messages yet."));
    timeline.replaceChildren.apply(timeline, items);
    if (atBottom) timeline.scrollTop = timeline.scrollHeight;
  }

  function fingerprint(view) {
    return JSON.stringify([
      view.messages.map(function (m) { return [m.id, m.status, m.updated_at]; }),
      view.events.length,
    ]);
  }

  let lastFingerprint = null;

  function applyView(view) {
    const owner = body.dataset.owner, agent = body.dataset.agent || "";
    if (view.owner !== owner || (view.agent || "") !== agent) {
      window.location.reload(); // someone took it over or released it: new buttons
      return;
    }
    Object.assign(agentNames, view.agent_names || {});
    const print = fingerprint(view);
    if (print !== lastFingerprint) {
      lastFingerprint = print;
      renderTimeline(view);
    }
    const windowText = document.getElementById("window-text");
    if (windowText) windowText.textContent = view.window_text;
    const banner = document.getElementById("window-banner");
    if (banner) {
      banner.classList.toggle("window-open", view.window_open);
      banner.classList.toggle("window-closed", !view.window_open);
    }
    const composer = document.getElementById("composer");
    if (composer && composer.dataset.windowOpen !== String(view.window_open)) {
      composer.dataset.windowOpen = String(view.window_open);
      setTextEnabled(view.window_open);
    }
  }

  async function pollConversation() {
    if (!waId) return;
    try {
      const answer = await call("GET", "/console/api/conversations/" + encodeURIComponent(waId));
      if (answer.status === 200) applyView(answer.data);
    } catch (_) { /* the next poll tries again */ }
  }

  // --- compose box -------------------------------------------------------------------------

  const composer = document.getElementById("composer");
  const errorBox = document.getElementById("composer-error");
  const textForm = document.getElementById("text-form");
  const templateForm = document.getElementById("template-form");
  const select = document.getElementById("template-select");
  const preview = document.getElementById("template-preview");
  const params = document.getElementById("template-params");
  const confirmedNote = document.getElementById("confirmed-note");
  const sendTemplate = document.getElementById("send-template");
  const dialog = document.getElementById("optout-dialog");
  let confirmed = false;

  function showError(message) {
    if (!errorBox) return;
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function setMode(mode) {
    document.querySelectorAll(".mode").forEach(function (button) {
      button.classList.toggle("active", button.dataset.mode === mode);
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
    textForm.querySelector("button").disabled = !open;
  }

  function chosen() {
    return select && select.value ? select.selectedOptions[0] : null;
  }

  function resetTemplate() {
    confirmed = false;
    select.value = "";
    preview.hidden = true;
    params.replaceChildren();
    confirmedNote.hidden = true;
    sendTemplate.disabled = true;
  }

  function showTemplate(option) {
    preview.textContent = option.dataset.body;
    preview.hidden = false;
    const fields = [];
    for (let i = 1; i <= Number(option.dataset.params); i++) {
      const label = el("label", "", "Parameter {{" + i + "}}");
      const input = el("input");
      input.name = "param";
      input.required = true;
      input.dataset.index = String(i);
      label.append(input);
      fields.push(label);
    }
    params.replaceChildren.apply(params, fields);
    confirmedNote.hidden = !confirmed;
    sendTemplate.disabled = false;
    const first = params.querySelector("input");
    if (first) first.focus();
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

  async function onTemplateChosen() {
    showError("");
    confirmed = false;
    const option = chosen();
    if (!option) { resetTemplate(); return; }
    if (option.dataset.confirm) {
      if (!(await askConfirmation(option.dataset.confirm))) { resetTemplate(); return; }
      confirmed = true;
    }
    showTemplate(option);
  }

  function describeError(answer) {
    const error = (answer.data && answer.data.error) || {};
    if (error.fields && error.fields.length) {
      return error.fields.map(function (f) { return f.field + ": " + f.message; }).join("; ");
    }
    return error.message || "The message could not be sent (" + answer.status + ").";
  }

  async function send(payload) {
    const url = "/console/api/conversations/" + encodeURIComponent(waId) + "/messages";
    let answer = await call("POST", url, payload);
    const code = answer.data && answer.data.error && answer.data.error.code;
    if (answer.status === 409 && code === "marketing_opt_out_confirmation_required") {
      if (!(await askConfirmation(answer.data.error.message))) return false;
      answer = await call("POST", url, Object.assign({}, payload, { confirm_opted_out: true }));
    }
    if (answer.status !== 202) { showError(describeError(answer)); return false; }
    showError("");
    await pollConversation();
    const timeline = document.getElementById("timeline");
    if (timeline) timeline.scrollTop = timeline.scrollHeight;
    return true;
  }

  if (composer) {
    document.querySelectorAll(".mode").forEach(function (button) {
      button.addEventListener("click", function () { setMode(button.dataset.mode); });
    });
    textForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const area = textForm.querySelector("textarea");
      if (!area.value.trim()) return;
      if (await send({ text: area.value })) area.value = "";
    });
    textForm.querySelector("textarea").addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); textForm.requestSubmit(); }
    });
    select.addEventListener("change", onTemplateChosen);
    templateForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const option = chosen();
      if (!option) return;
      const values = Array.from(params.querySelectorAll("input")).map(function (i) { return i.value; });
      const payload = {
        template: { name: option.dataset.name, language: option.dataset.language, params: values },
      };
      if (confirmed) payload.confirm_opted_out = true;
      if (await send(payload)) resetTemplate();
    });
  }

  // --- contact panel -----------------------------------------------------------------------

  const toggle = document.getElementById("opt-in-toggle");
  if (toggle && waId) {
    toggle.addEventListener("change", async function () {
      toggle.disabled = true;
      const url = "/console/api/contacts/" + encodeURIComponent(waId) + "/opt-in";
      const answer = await call("POST", url, { marketing_opt_in: toggle.checked });
      if (answer.status === 200) {
        window.location.reload(); // banners and template warnings follow the new value
      } else {
        toggle.checked = !toggle.checked;
        toggle.disabled = false;
      }
    });
  }

  // --- start ---------------------------------------------------------------------------------

  localizeTimes(document);
  const timeline = document.getElementById("timeline");
  if (timeline) timeline.scrollTop = timeline.scrollHeight;
  window.setInterval(pollLists, LIST_POLL_MS);
  if (waId) window.setInterval(pollConversation, CONVERSATION_POLL_MS);
})();
