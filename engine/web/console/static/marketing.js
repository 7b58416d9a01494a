// The marketers' pages: live broadcast progress (server-sent events), the new-broadcast
// form (live count, the marketing opt-in checkbox and its warning), the sequence builder
// and a contact's opt-in switch. Plain script, no build step; the pages work without it
// except for the live parts.
(function () {
  "use strict";

  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var STATUSES = ["queued", "sent", "delivered", "read", "failed", "skipped"];

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function number(n) { return Number(n).toLocaleString("en-US"); }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    });
  }

  function errorText(data) {
    var error = (data && data.error) || {};
    if (error.fields && error.fields.length) {
      return error.fields.map(function (f) { return f.field + ": " + f.message; }).join("; ");
    }
    return error.message || "Something went wrong.";
  }

  // --- live progress ---------------------------------------------------------------------

  function showProgress(b) {
    $all('[data-broadcast="' + b.id + '"]').forEach(function (root) {
      STATUSES.forEach(function (status) {
        var cell = $('[data-count="' + status + '"] .count-n', root);
        if (cell) { cell.textContent = number(b.counts[status]); }
      });
      var state = $("[data-state]", root);
      if (state) { state.textContent = b.state; state.className = "state state-" + b.state; }
      var bar = $("[data-progress]", root);
      if (bar) { bar.value = b.percent; bar.textContent = b.percent + "%"; }
      var percent = $("[data-percent]", root);
      if (percent) { percent.textContent = b.percent + "%"; }
      var paused = $("#paused-reason", root);
      if (paused) {
        paused.hidden = !b.paused_reason;
        $("[data-paused-by]", paused).textContent = b.paused_by === "guard" ? "Paused by the quality guard." : "Paused.";
        $("[data-paused-reason]", paused).textContent = b.paused_reason || "";
      }
      var show = {
        pause: b.state === "scheduled" || b.state === "sending",
        resume: b.state === "paused",
        cancel: b.state !== "completed" && b.state !== "cancelled"
      };
      Object.keys(show).forEach(function (action) {
        var form = $('[data-action="' + action + '"]', root);
        if (form) { form.hidden = !show[action]; }
      });
    });
  }

  // The per-recipient table follows the counts, fetched again at most every few seconds.
  var recipients = $("#recipients");
  var fetching = false, stale = false;
  function refreshRecipients() {
    if (!recipients) { return; }
    if (fetching) { stale = true; return; }
    fetching = true;
    fetch(location.href, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("recipients");
        if (fresh) { recipients.innerHTML = fresh.innerHTML; }
      })
      .finally(function () {
        setTimeout(function () {
          fetching = false;
          if (stale) { stale = false; refreshRecipients(); }
        }, 3000);
      });
  }

  $all("[data-live]").forEach(function (root) {
    if (!window.EventSource) { return; }
    var source = new EventSource(root.getAttribute("data-live"));
    var first = true;
    source.onmessage = function (event) {
      var data = JSON.parse(event.data);
      data.broadcasts.forEach(showProgress);
      if (!first) { refreshRecipients(); }
      first = false;
      document.body.setAttribute("data-live-updates", String(Number(document.body.getAttribute("data-live-updates") || 0) + 1));
    };
  });

  // --- template parameters (broadcast form and builder) -----------------------------------

  function fillParams(container, option, name) {
    var kept = $all("input", container).map(function (input) { return input.value; });
    if (!kept.length && container.getAttribute("data-values")) {
      try { kept = JSON.parse(container.getAttribute("data-values")); } catch (e) { kept = []; }
      container.removeAttribute("data-values");
    }
    container.textContent = "";
    var count = option ? Number(option.getAttribute("data-params") || 0) : 0;
    for (var i = 1; i <= count; i++) {
      var label = document.createElement("label");
      label.textContent = "Parameter {{" + i + "}}";
      var input = document.createElement("input");
      input.type = "text";
      input.name = name;
      input.setAttribute("data-index", String(i));
      input.value = kept[i - 1] || "";
      label.appendChild(input);
      container.appendChild(label);
    }
  }

  function chosen(select) {
    return select.value ? select.options[select.selectedIndex] : null;
  }

  // --- the new-broadcast form -------------------------------------------------------------

  var form = $("#broadcast-form");
  if (form) {
    var select = $("#template-select");
    var optIn = $("#opted-in-only");
    var acknowledge = $("#acknowledge");
    var create = $("#create-broadcast");
    var timer = null;
    var asked = 0;

    var isMarketing = function () {
      var option = chosen(select);
      return !!option && option.getAttribute("data-category") === "MARKETING";
    };

    var body = function () {
      var data = new FormData(form);
      var template = String(data.get("template") || "").split("|");
      var request = {
        template: { name: template[0] || "", language: template[1] || "", params: data.getAll("param").map(String) },
        opted_in_only: optIn.checked
      };
      var split = function (text) {
        return String(text || "").split(/[,\n]/).map(function (s) { return s.trim(); }).filter(Boolean);
      };
      if (data.get("audience") === "numbers") {
        request.contacts = split(data.get("contacts"));
      } else {
        request.tags = split(data.get("tags"));
        request.tags_match = data.get("tags_match") || "any";
        request.attributes = [];
        for (var row = 0; data.has("attribute_" + row); row++) {
          var attribute = String(data.get("attribute_" + row)).trim();
          if (!attribute) { continue; }
          var op = data.get("op_" + row), value = String(data.get("value_" + row)).trim();
          var scalar = function (v) {
            try { var parsed = JSON.parse(v); if (typeof parsed !== "object") { return parsed; } } catch (e) { /* text */ }
            return v;
          };
          if (op === "exists") { request.attributes.push({ attribute: attribute, exists: true }); }
          else if (op === "in") { request.attributes.push({ attribute: attribute, "in": split(value).map(scalar) }); }
          else { request.attributes.push({ attribute: attribute, equals: scalar(value) }); }
        }
      }
      return request;
    };

    var setCounts = function (total, optedOut, will) {
      $("#count-total").textContent = total;
      $("#count-opted-out").textContent = optedOut;
      $("#count-will-send").textContent = will;
    };

    var count = function () {
      var request = body();
      var audience = (request.contacts || []).length + (request.tags || []).length + (request.attributes || []).length;
      var error = $("#preview-error");
      if (!request.template.name || !audience) {
        setCounts("–", "–", "–");
        error.hidden = true;
        $("#preview-note").textContent = "Choose an audience and a template to count.";
        return;
      }
      var mine = ++asked;
      postJson("/console/api/broadcasts/preview", request).then(function (answer) {
        if (mine !== asked) { return; }
        if (!answer.ok) {
          setCounts("–", "–", "–");
          error.textContent = errorText(answer.data);
          error.hidden = false;
          return;
        }
        var p = answer.data;
        error.hidden = true;
        setCounts(number(p.total), number(p.opted_out), number(p.will_send));
        $("#preview-note").textContent = p.category === "MARKETING"
          ? (p.opted_in_only ? "Contacts who opted out of marketing are left out." : "Everyone selected gets it, including contacts who opted out.")
          : "Not a marketing template: opt-in does not limit who receives it.";
        form.setAttribute("data-counted", String(mine));
      });
    };

    var recount = function () {
      clearTimeout(timer);
      timer = setTimeout(count, 250);
    };

    var refresh = function () {
      var marketing = isMarketing();
      $("#opt-in-box").hidden = !marketing;
      var off = marketing && !optIn.checked;
      $("#quality-warning").hidden = !off;
      if (!off) { acknowledge.checked = false; }
      create.disabled = off && !acknowledge.checked;
      $("#create-hint").hidden = !create.disabled;
      var option = chosen(select);
      var preview = $("#template-preview");
      var params = $all("#template-params input").map(function (input) { return input.value; });
      preview.hidden = !option;
      preview.textContent = option
        ? option.getAttribute("data-body").replace(/\{\{\s*(\d+)\s*\}\}/g, function (all, n) { return params[n - 1] || all; })
        : "";
    };

    select.addEventListener("change", function () {
      fillParams($("#template-params"), chosen(select), "param");
      refresh();
      recount();
    });
    optIn.addEventListener("change", function () { refresh(); recount(); });
    acknowledge.addEventListener("change", refresh);
    $all('input[name="audience"]').forEach(function (radio) {
      radio.addEventListener("change", function () {
        $all("[data-audience]").forEach(function (part) { part.hidden = part.getAttribute("data-audience") !== radio.value || !radio.checked; });
        recount();
      });
    });
    $all('input[name="when"]').forEach(function (radio) {
      radio.addEventListener("change", function () { $('[data-when="later"]').hidden = $('input[name="when"]:checked').value !== "later"; });
    });
    form.addEventListener("input", function (event) {
      if (event.target.name === "param") { refresh(); }
      if (event.target.closest("[data-audience]") || event.target.name === "param") { recount(); }
    });
    form.addEventListener("submit", function (event) {
      if (create.disabled) { event.preventDefault(); return; }
      // One broadcast per form: the server keeps the form's key; this only spares a second request.
      setTimeout(function () { create.disabled = true; }, 0);
    });
    fillParams($("#template-params"), chosen(select), "param");
    refresh();
    count();
  }

  // --- the sequence builder ---------------------------------------------------------------

  var builder = $("#sequence-form");
  if (builder) {
    var steps = $("#steps");
    var setUp = function (row) {
      var kind = $("[data-step-kind]", row);
      var template = $("[data-step-template]", row);
      var params = $(".step-params", row);
      var sync = function () {
        var isText = kind.value === "text";
        $all("[data-kind]", row).forEach(function (part) { part.hidden = part.getAttribute("data-kind") !== (isText ? "text" : "template"); });
        var option = chosen(template);
        $("[data-marketing-note]", row).hidden = isText || !option || option.getAttribute("data-category") !== "MARKETING";
      };
      kind.addEventListener("change", sync);
      template.addEventListener("change", function () {
        fillParams(params, chosen(template), params.getAttribute("data-param-name"));
        sync();
      });
      $("[data-remove-step]", row).addEventListener("click", function () {
        if ($all(".step-row", steps).length > 1) { row.remove(); renumber(); }
      });
      fillParams(params, chosen(template), params.getAttribute("data-param-name"));
      sync();
    };
    var renumber = function () {
      $all(".step-row", steps).forEach(function (row, index) {
        row.setAttribute("data-step", String(index));
        $("[data-step-number]", row).textContent = String(index + 1);
        $all("[name]", row).forEach(function (input) { input.name = input.name.replace(/^step_\d+_/, "step_" + index + "_"); });
        var params = $(".step-params", row);
        params.setAttribute("data-param-name", "step_" + index + "_param");
      });
    };
    $all(".step-row", steps).forEach(setUp);
    $("#add-step").addEventListener("click", function () {
      var copy = $("#step-template").content.firstElementChild.cloneNode(true);
      steps.appendChild(copy);
      renumber();
      setUp(copy);
    });
  }

  // --- a contact's opt-in switch ----------------------------------------------------------

  var toggle = $("#opt-in-toggle");
  if (toggle) {
    var dialog = $("#opt-in-dialog");
    var wanted = null;
    toggle.addEventListener("change", function () {
      wanted = toggle.checked;
      toggle.checked = !wanted; // nothing changes until it is confirmed
      $("#opt-in-title").textContent = wanted ? "Opt this contact in to marketing?" : "Opt this contact out of marketing?";
      $("#opt-in-text").textContent = wanted
        ? "Only opt a contact in when they asked to receive marketing messages."
        : "Broadcasts will leave them out, and marketing steps of sequences will fail for them.";
      $("#opt-in-note").value = "";
      $("#opt-in-error").hidden = true;
      dialog.showModal();
    });
    dialog.addEventListener("close", function () {
      if (dialog.returnValue !== "confirm" || wanted === null) { return; }
      var note = $("#opt-in-note").value.trim();
      var request = { marketing_opt_in: wanted };
      if (note) { request.note = note; }
      postJson("/console/api/contacts/" + encodeURIComponent(toggle.getAttribute("data-wa-id")) + "/opt-in", request)
        .then(function (answer) {
          if (!answer.ok) {
            $("#opt-in-error").textContent = errorText(answer.data);
            $("#opt-in-error").hidden = false;
            dialog.showModal();
            return;
          }
          toggle.checked = answer.data.marketing_opt_in;
          $("#opt-in-label").textContent = answer.data.marketing_opt_in ? "Opted in" : "Opted out";
          var list = $("#consent-list");
          list.textContent = "";
          answer.data.consent.slice().reverse().forEach(function (event) {
            var item = document.createElement("li");
            var pill = document.createElement("span");
            pill.className = "pill " + (event.marketing_opt_in ? "pill-yes" : "pill-no");
            pill.textContent = event.marketing_opt_in ? "Opted in" : "Opted out";
            var source = document.createElement("span");
            source.className = "consent-source";
            source.textContent = event.source + (event.actor && event.actor !== event.source ? " · " + event.actor : "");
            var time = document.createElement("time");
            time.textContent = new Date(event.at).toLocaleString();
            item.append(pill, source, time);
            if (event.note) {
              var noteText = document.createElement("span");
              noteText.className = "consent-note";
              noteText.textContent = event.note;
              item.appendChild(noteText);
            }
            list.appendChild(item);
          });
        });
    });
  }
})();
