// Saved replies in the compose box: typing "/" at the start of a word lists them;
// arrows move, Enter or Tab inserts, Escape closes, and a click inserts too.
(function () {
  "use strict";
  const textarea = document.querySelector("#text-form textarea");
  const picker = document.getElementById("saved-reply-picker");
  if (!textarea || !picker) return;
  const form = textarea.form;
  form.parentNode.insertBefore(picker, form); // right above the box it completes
  let replies = null;
  let matches = [];
  let active = 0;
  let token = null; // {start, end} of the "/word" being typed

  async function loadReplies() {
    if (replies) return replies;
    const response = await fetch("/console/api/saved-replies", { credentials: "same-origin", headers: { Accept: "application/json" } });
    replies = response.status === 200 ? (await response.json()).saved_replies : [];
    return replies;
  }

  function currentToken() {
    const caret = textarea.selectionStart;
    if (caret !== textarea.selectionEnd) return null;
    const before = textarea.value.slice(0, caret);
    const found = /(^|\s)\/([\w-]*)$/.exec(before);
    if (!found) return null;
    return { start: caret - found[2].length - 1, end: caret, word: found[2].toLowerCase() };
  }

  function close() {
    picker.hidden = true;
    picker.replaceChildren();
    textarea.removeAttribute("aria-activedescendant");
    textarea.setAttribute("aria-expanded", "false");
    matches = [];
    token = null;
  }

  function render() {
    picker.replaceChildren();
    matches.forEach(function (reply, index) {
      const option = document.createElement("div");
      option.className = "saved-reply-option" + (index === active ? " active" : "");
      option.id = "saved-reply-" + index;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", index === active ? "true" : "false");
      const shortcut = document.createElement("strong");
      shortcut.textContent = "/" + reply.shortcut;
      const text = document.createElement("span");
      text.textContent = " " + reply.text;
      option.append(shortcut, text);
      option.addEventListener("mousedown", function (event) {
        event.preventDefault();
        insert(reply);
      });
      picker.append(option);
    });
    picker.hidden = matches.length === 0;
    textarea.setAttribute("aria-expanded", matches.length ? "true" : "false");
    if (matches.length) textarea.setAttribute("aria-activedescendant", "saved-reply-" + active);
  }

  function insert(reply) {
    const at = token || currentToken();
    if (!at) return close();
    const value = textarea.value;
    textarea.value = value.slice(0, at.start) + reply.text + value.slice(at.end);
    const caret = at.start + reply.text.length;
    textarea.setSelectionRange(caret, caret);
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    close();
    textarea.focus();
  }

  textarea.setAttribute("aria-controls", "saved-reply-picker");
  textarea.setAttribute("aria-autocomplete", "list");
  textarea.addEventListener("input", async function () {
    const at = currentToken();
    if (!at) return close();
    const all = await loadReplies();
    token = currentToken();
    if (!token) return close();
    matches = all.filter(function (r) { return r.shortcut.indexOf(token.word) === 0; })
      .concat(all.filter(function (r) { return r.shortcut.indexOf(token.word) > 0; }))
      .slice(0, 8);
    active = 0;
    render();
  });
  textarea.addEventListener("blur", function () { window.setTimeout(close, 150); });

  // On the form, in the capture phase: the picker's keys never reach the compose box's
  // own Enter-to-send.
  form.addEventListener("keydown", function (event) {
    if (event.target !== textarea || picker.hidden || !matches.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      active = (active + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
      render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      insert(matches[active]);
    } else if (event.key === "Escape") {
      close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }, true);
})();
