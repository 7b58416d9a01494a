// Search over contacts (name, number, user id, tags) and message text; a contact opens
// its conversation, even one who never wrote (then only templates can be sent).
(function () {
  "use strict";
  const input = document.getElementById("desk-search-input");
  const results = document.getElementById("desk-search-results");
  if (!input || !results) return;
  let timer = null;
  let asked = 0;

  function link(address, title, detail) {
    const a = document.createElement("a");
    a.className = "search-hit";
    a.href = "/console/conversations/" + encodeURIComponent(address);
    const strong = document.createElement("strong");
    strong.textContent = title;
    const small = document.createElement("span");
    small.className = "muted small";
    small.textContent = detail;
    a.append(strong, small);
    return a;
  }

  function heading(text) {
    const h = document.createElement("h3");
    h.className = "search-heading";
    h.textContent = text;
    return h;
  }

  function render(data) {
    results.replaceChildren();
    if (!data.contacts.length && !data.messages.length) {
      const p = document.createElement("p");
      p.className = "muted small";
      p.textContent = "Nothing found.";
      results.append(p);
    }
    if (data.contacts.length) {
      results.append(heading("Contacts"));
      data.contacts.forEach(function (c) {
        const detail = [c.wa_id ? "+" + c.wa_id : c.user_id].concat(c.tags.map(function (t) { return "#" + t; })).join(" · ");
        results.append(link(c.address, c.name || c.address, detail));
      });
    }
    if (data.messages.length) {
      results.append(heading("Messages"));
      data.messages.forEach(function (m) {
        results.append(link(m.address, m.name || m.address, (m.direction === "inbound" ? "" : "You: ") + m.text));
      });
    }
    results.hidden = false;
  }

  async function search() {
    const q = input.value.trim();
    if (!q) { results.hidden = true; results.replaceChildren(); return; }
    const mine = ++asked;
    const response = await fetch("/console/api/search?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (mine !== asked || response.status !== 200) return;
    render(await response.json());
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(search, 200);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown") {
      const first = results.querySelector("a");
      if (first) { event.preventDefault(); first.focus(); }
    } else if (event.key === "Escape") {
      input.value = "";
      results.hidden = true;
    }
  });
  results.addEventListener("keydown", function (event) {
    const links = Array.from(results.querySelectorAll("a"));
    const at = links.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && at < links.length - 1) { event.preventDefault(); links[at + 1].focus(); }
    if (event.key === "ArrowUp") { event.preventDefault(); (at > 0 ? links[at - 1] : input).focus(); }
    if (event.key === "Escape") { results.hidden = true; input.focus(); }
  });
})();
