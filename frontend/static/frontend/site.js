// MemStore marketplace: progressive enhancement only. Every flow works without this file.
(function () {
  "use strict";
  // Copy buttons: shown only when the clipboard API is there.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    var target = document.querySelector(btn.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      navigator.clipboard.writeText(target.value || target.textContent).then(function () {
        var label = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = label; }, 1500);
      }, function () { target.select(); });
    });
  });
  // Forms marked data-once: show progress on submit (the server is idempotent anyway).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var btn = form.querySelector("button[type=submit]");
      if (btn) { btn.setAttribute("aria-busy", "true"); btn.textContent = "Working…"; }
    });
  });
  // Ingestion badges on the dashboard poll their status until it settles.
  var pending = Array.prototype.slice.call(document.querySelectorAll("[data-ingest-url]"))
    .filter(function (el) { return ["pending", "running"].indexOf(el.getAttribute("data-status")) >= 0; });
  function poll() {
    pending = pending.filter(function (el) {
      return ["pending", "running"].indexOf(el.getAttribute("data-status")) >= 0;
    });
    if (!pending.length) return;
    pending.forEach(function (el) {
      fetch(el.getAttribute("data-ingest-url"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) return;
          el.setAttribute("data-status", d.status);
          el.className = "badge ingest-" + d.status;
          el.textContent = d.status + (d.memories ? " · " + d.memories + " memories" : "");
        })
        .catch(function () {});
    });
    setTimeout(poll, 2000);
  }
  if (pending.length) setTimeout(poll, 1500);
})();
