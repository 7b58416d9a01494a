// The desk's work on the conversation page: media, locations, contact cards and
// reactions added to the timeline's messages; private notes and assignments placed
// among them by time; the note box, assignment, resolve, and the confirmation before
// releasing a customer who asked for a person. Whatever renders the timeline, this
// follows it: a new message in it fetches the extras again. The live updates bring a
// colleague's entries (``deskentry``, placed at once, once each by their id) and who
// has the conversation and whether it is resolved (``conversationchange``).
(function () {
  "use strict";
  const body = document.body;
  const waId = body.dataset.waId;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const base = waId ? "/console/api/conversations/" + encodeURIComponent(waId) : null;
  const namesNode = document.getElementById("agent-names");
  let agentNames = {};
  try { agentNames = JSON.parse(namesNode ? namesNode.textContent : "{}"); } catch (_) { agentNames = {}; }

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
    return { status: response.status, data: data };
  }

  function describeError(answer) {
    const error = answer.data && answer.data.error;
    if (!error) return "Something went wrong (" + answer.status + "). Try again.";
    return error.message;
  }

  function show(id, message) {
    const node = document.getElementById(id);
    if (!node) return;
    node.textContent = message || "";
    node.hidden = !message;
  }

  function localTime(node) {
    // As the console shows times: today's as the time alone, others with their day.
    const when = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) return;
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    node.textContent = when.toDateString() === new Date().toDateString()
      ? time : when.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
  }

  function fragment(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html; // server-rendered and escaped (jinja2 autoescape)
    return holder.content;
  }

  window.deskWork = window.deskWork || {};

  if (!base) return;
  const timeline = document.getElementById("timeline");
  let extras = null;
  let known = new Set();
  let loading = null;
  // Every desk entry this page has, by id: from the extras it loaded and from the live
  // updates. An answer asked for before an entry was written lacks it, so answers add
  // to what the page has rather than replace it (entries are never taken back).
  const entries = new Map();

  function keepEntries(list) {
    list.forEach(function (entry) { entries.set(entry.id, entry); });
    return Array.from(entries.values()).sort(function (a, b) { return a.id - b.id; });
  }

  function itemTime(item) {
    let at = item.dataset.at;
    if (!at) {
      const time = item.querySelector("time[datetime]");
      at = time ? time.getAttribute("datetime") : null;
    }
    return at ? Date.parse(at) : NaN;
  }

  let placed = false;

  function nearBottom() {
    return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
  }

  function toBottom() { timeline.scrollTop = timeline.scrollHeight; }

  function apply() {
    if (!timeline || !extras) return;
    const stick = !placed || nearBottom(); // the first time, or the agent was at the end
    placed = true;
    observer.disconnect();
    try {
      timeline.querySelectorAll("li.desk-entry").forEach(function (node) { node.remove(); });
      timeline.querySelectorAll("li.msg[data-id]").forEach(function (item) {
        const id = item.dataset.id;
        if (extras.hidden.indexOf(id) >= 0) { item.hidden = true; return; }
        const rich = extras.bodies[id];
        if (rich && item.dataset.rich !== "1") {
          const text = item.querySelector(".msg-text");
          if (text) {
            text.replaceChildren(fragment(rich));
            text.classList.add("msg-media");
            item.dataset.rich = "1";
          }
        }
        const emoji = extras.reactions[id];
        let badge = item.querySelector(".msg-reaction");
        if (emoji) {
          if (!badge) {
            badge = document.createElement("span");
            badge.className = "msg-reaction";
            (item.querySelector(".bubble") || item).append(badge);
          }
          badge.textContent = emoji;
          badge.setAttribute("aria-label", "Customer reacted " + emoji);
        } else if (badge) {
          badge.remove();
        }
      });
      const items = Array.from(timeline.children).filter(function (n) { return !n.classList.contains("desk-entry"); });
      extras.entries.forEach(function (entry) {
        const node = fragment(entry.html).firstElementChild;
        if (!node) return;
        node.querySelectorAll("time[datetime]").forEach(localTime);
        const at = Date.parse(entry.at);
        const next = items.find(function (item) { return itemTime(item) > at; });
        timeline.insertBefore(node, next || null);
      });
      const empty = timeline.querySelector(".timeline-empty");
      if (empty && extras.entries.length) empty.hidden = true;
      if (stick) {
        toBottom();
        timeline.querySelectorAll("img, video").forEach(function (media) {
          media.addEventListener("load", toBottom, { once: true });
          media.addEventListener("loadedmetadata", toBottom, { once: true });
        });
      }
    } finally {
      observer.observe(timeline, { childList: true });
    }
  }

  function shownIds() {
    return Array.from(timeline ? timeline.querySelectorAll("li.msg[data-id]") : []).map(function (n) { return n.dataset.id; });
  }

  let again = false;

  // One request at a time; a change while one is under way asks once more after it
  // (its answer may predate the change: a message that came live while it was asked).
  async function load() {
    if (loading) { again = true; return loading; }
    loading = (async function () {
      do {
        again = false;
        try {
          const asked = new Set(shownIds()); // what this answer covers at most
          const answer = await call("GET", base + "/extras");
          if (answer.status === 200) {
            extras = answer.data;
            extras.entries = keepEntries(extras.entries);
            known = asked;
            apply();
            updateAssignment(extras.assignment);
            if (shownIds().some(function (id) { return !asked.has(id); })) again = true;
          }
        } catch (_) { /* the next change tries again */ }
      } while (again);
      loading = null;
    })();
    return loading;
  }

  const observer = new MutationObserver(function () {
    const ids = Array.from(timeline.querySelectorAll("li.msg[data-id]")).map(function (n) { return n.dataset.id; });
    const fresh = ids.some(function (id) { return !known.has(id); });
    apply(); // the timeline was redrawn: put the extras back at once
    if (fresh) load();
  });
  if (timeline) observer.observe(timeline, { childList: true });
  window.deskWork.refresh = load;
  // A colleague's note, assignment, resolve or reopen: in its place at once. One this
  // page's own action already showed (its answer loaded the extras) is there already.
  document.addEventListener("deskentry", function (event) {
    const entry = event.detail;
    if (!entry || entries.has(entry.id)) return;
    if (!extras) { keepEntries([entry]); return; } // the first load, under way, places it
    extras.entries = keepEntries([entry]);
    apply();
  });
  // Who has the conversation and whether it is resolved, from the live updates; with
  // no state (the page missed changes), everything is loaded again.
  document.addEventListener("conversationchange", function (event) {
    const state = event.detail;
    if (!state) { load(); return; }
    updateAssignment({ agent: state.owner === "agent" ? state.agent : null, resolved: state.resolved });
  });
  load();

  // --- private notes ---------------------------------------------------------------------------
  const noteForm = document.getElementById("note-form");
  if (noteForm) {
    const noteText = document.getElementById("note-text");
    let busy = false;
    noteForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (busy || !noteText.value.trim()) return;
      busy = true;
      try {
        const answer = await call("POST", base + "/notes", { text: noteText.value });
        if (answer.status === 201) {
          noteText.value = "";
          show("note-error", "");
          await load();
        } else {
          show("note-error", describeError(answer));
        }
      } finally { busy = false; }
    });
    noteText.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        noteForm.requestSubmit();
      }
    });
  }

  // --- assignment and resolution ----------------------------------------------------------------
  function updateAssignment(state) {
    const toggle = document.getElementById("resolve-toggle");
    const pill = document.getElementById("resolved-state");
    if (!state || !toggle || !pill) return;
    const assignee = document.getElementById("assignee-state");
    if (assignee) {
      if (state.agent) {
        const name = document.createElement("strong");
        name.textContent = agentNames[state.agent] || state.agent;
        assignee.replaceChildren("Assigned to ", name);
      } else {
        assignee.replaceChildren("Not assigned");
      }
    }
    const submit = document.getElementById("assign-submit");
    if (submit) submit.textContent = state.agent ? "Transfer" : "Assign";
    toggle.dataset.resolved = String(state.resolved);
    toggle.textContent = state.resolved ? "Reopen" : "Mark resolved";
    pill.textContent = state.resolved ? "Resolved" : "Open";
    pill.classList.toggle("pill-yes", state.resolved);
    pill.classList.toggle("pill-open", !state.resolved);
  }

  const assignForm = document.getElementById("assign-form");
  if (assignForm) {
    assignForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const note = document.getElementById("assign-note").value.trim();
      const answer = await call("POST", base + "/assign", {
        to: document.getElementById("assign-to").value,
        note: note || null,
      });
      if (answer.status === 200) {
        window.location.reload(); // the owner changed: the composer and buttons follow
      } else {
        show("assign-error", describeError(answer));
      }
    });
    const toggle = document.getElementById("resolve-toggle");
    toggle.addEventListener("click", async function () {
      const resolved = toggle.dataset.resolved === "true";
      const answer = await call("POST", base + (resolved ? "/reopen" : "/resolve"));
      if (answer.status === 200) {
        show("assign-error", "");
        updateAssignment(answer.data);
        await load();
      } else {
        show("assign-error", describeError(answer));
      }
    });
  }

  // --- assignment where the contact panel is not shown -----------------------------------------
  const drawer = document.getElementById("desk-drawer");
  const assignSection = document.getElementById("desk-assign");
  if (drawer && assignSection) {
    const home = assignSection.parentNode;
    const homeNext = assignSection.nextSibling;
    const narrow = window.matchMedia("(max-width: 1100px)");
    const place = function () {
      if (narrow.matches) {
        drawer.append(assignSection);
        drawer.hidden = false;
      } else {
        home.insertBefore(assignSection, homeNext);
        drawer.hidden = true;
      }
    };
    narrow.addEventListener("change", place);
    place();
  }

  // --- releasing a customer who asked for a person --------------------------------------------
  const panel = document.getElementById("desk-assign");
  const release = document.getElementById("release");
  const releaseDialog = document.getElementById("release-dialog");
  if (panel && release && releaseDialog && panel.dataset.askedForPerson === "true") {
    const form = release.form;
    let confirmed = false;
    form.addEventListener("submit", function (event) {
      if (confirmed) return;
      event.preventDefault();
      releaseDialog.returnValue = "";
      releaseDialog.showModal();
      document.getElementById("release-cancel").focus();
    });
    releaseDialog.addEventListener("close", function () {
      if (releaseDialog.returnValue === "confirm") {
        confirmed = true;
        form.submit();
      } else {
        release.focus();
      }
    });
  }
})();
