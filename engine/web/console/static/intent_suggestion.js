// The console's suggestion to opt out a customer whose words read as "stop marketing":
// one click records the opt-out through the agent's opt-in switch, with their words.
(function () {
  "use strict";
  const button = document.getElementById("intent-opt-out");
  if (!button) return;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  button.addEventListener("click", async function () {
    button.disabled = true;
    const url = "/console/api/contacts/" + encodeURIComponent(button.dataset.contact) + "/opt-in";
    const answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ marketing_opt_in: false, note: button.dataset.note }),
    });
    if (answer.status === 200) {
      window.location.reload(); // the switch, banners and history follow the new value
    } else {
      button.disabled = false;
    }
  });
})();
