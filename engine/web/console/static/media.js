// Sending an image or a document: the file goes to the server, which uploads it to
// the Cloud API and queues a media message through the send rules (the 24-hour
// window applies as for any free-form message).
(function () {
  "use strict";
  const form = document.getElementById("media-form");
  const waId = document.body.dataset.waId;
  if (!form || !waId) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const file = document.getElementById("media-file");
  const chosen = document.getElementById("media-chosen");
  const caption = document.getElementById("media-caption");
  const send = document.getElementById("media-send");
  const errorBox = document.getElementById("media-error");
  let busy = false;

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function reset() {
    form.reset();
    chosen.textContent = "";
    caption.hidden = true;
    send.hidden = true;
  }

  file.addEventListener("change", function () {
    const picked = file.files && file.files[0];
    showError("");
    chosen.textContent = picked ? picked.name : "";
    caption.hidden = !picked;
    send.hidden = !picked;
    if (picked) caption.focus();
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const picked = file.files && file.files[0];
    if (busy || !picked) return;
    busy = true;
    send.disabled = true;
    const data = new FormData();
    data.append("file", picked, picked.name);
    if (caption.value.trim()) data.append("caption", caption.value.trim());
    try {
      const response = await fetch("/console/api/conversations/" + encodeURIComponent(waId) + "/media", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body: data,
      });
      let answer = null;
      try { answer = await response.json(); } catch (_) { answer = null; }
      if (response.status === 202) {
        reset();
        showError("");
        if (window.deskWork && window.deskWork.refresh) window.deskWork.refresh();
      } else {
        const error = answer && answer.error;
        showError(error ? error.message : "The file was not sent (" + response.status + ").");
      }
    } catch (_) {
      showError("The file was not sent: the server could not be reached.");
    } finally {
      busy = false;
      send.disabled = false;
    }
  });
})();
