// The marketing opt-in switch (templates/_consent_switch.html): a change asks for
// confirmation and an optional note, is saved with fetch (the page and any draft stay),
// and redraws the consent history. Reusable: any page with [data-consent-switch] and a
// csrf-token meta tag. It tells the page through a "consentchange" event on the section
// (detail: the server's answer) so the page can update its own banners.
(function () {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function when(iso) {
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return "";
    return at.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" }) + " " +
      at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function historyItem(event) {
    const item = el("li");
    item.append(
      el("span", "pill " + (event.marketing_opt_in ? "pill-yes" : "pill-no"),
        event.marketing_opt_in ? "Opted in" : "Opted out"),
      el("span", "consent-source", event.source));
    const time = el("time", "", when(event.at));
    time.dateTime = event.at;
    item.append(time);
    if (event.note) item.append(el("span", "consent-note", event.note));
    return item;
  }

  function render(section, optedIn, history) {
    const state = section.querySelector("[data-consent-state]");
    state.textContent = optedIn ? "Opted in" : "Opted out";
    state.className = "pill " + (optedIn ? "pill-yes" : "pill-no");
    section.querySelector("[data-consent-change]").textContent = optedIn ? "Opt out" : "Opt in";
    section.dataset.optedIn = String(optedIn);
    if (history) {
      const list = section.querySelector("[data-consent-list]");
      list.replaceChildren.apply(list, history.map(historyItem));
    }
  }

  function ask(section, optIn) {
    const dialog = section.querySelector("[data-consent-dialog]");
    section.querySelector("[data-consent-title]").textContent =
      optIn ? "Opt this contact in to marketing?" : "Opt this contact out of marketing?";
    section.querySelector("[data-consent-question]").textContent = optIn
      ? "Only do this when the customer agreed to receive marketing messages. The change is recorded in your name."
      : "Marketing templates will then need a confirmation before they are sent. The change is recorded in your name.";
    const note = section.querySelector("[data-consent-note]");
    note.value = "";
    return new Promise(function (resolve) {
      dialog.returnValue = "";
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "confirm" ? { note: note.value.trim() } : null);
      });
      dialog.showModal();
      note.focus();
    });
  }

  async function change(section) {
    const button = section.querySelector("[data-consent-change]");
    const error = section.querySelector("[data-consent-error]");
    const optIn = section.dataset.optedIn !== "true";
    const answer = await ask(section, optIn);
    if (!answer) { button.focus(); return; }
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await fetch(
        "/console/api/contacts/" + encodeURIComponent(section.dataset.address) + "/opt-in", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ marketing_opt_in: optIn, note: answer.note || null }),
        });
      const data = await response.json().catch(function () { return null; });
      if (response.status !== 200) {
        error.textContent = (data && data.error && data.error.message) || "The change was not saved (" + response.status + ").";
        error.hidden = false;
        return;
      }
      render(section, data.marketing_opt_in, data.history);
      section.dispatchEvent(new CustomEvent("consentchange", { bubbles: true, detail: data }));
    } catch (_) {
      error.textContent = "The change was not saved: the server could not be reached.";
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.focus();
    }
  }

  document.querySelectorAll("[data-consent-switch]").forEach(function (section) {
    section.dataset.optedIn = String(section.querySelector("[data-consent-state]").textContent.trim() === "Opted in");
    section.querySelectorAll("time[datetime]").forEach(function (node) {
      node.textContent = when(node.getAttribute("datetime"));
    });
    section.querySelector("[data-consent-change]").addEventListener("click", function () { change(section); });
  });
})();
