// karya web UI: live regions fed by server-sent events, and small niceties. No build step.
(function () {
  "use strict";
  // A region with data-events="/url" is replaced by each "board" event of that stream.
  function connect(region) {
    var source = new EventSource(region.getAttribute("data-events"));
    source.addEventListener("board", function (event) {
      region.innerHTML = event.data;
      region.classList.remove("stale");
      region.setAttribute("data-refreshed", String(Date.now()));
    });
    source.addEventListener("stale", function () {
      region.classList.add("stale");
    });
    source.onerror = function () {
      region.classList.add("stale");
    };
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events]").forEach(connect);
  });
  // After a form comes back with errors, bring the first one into view.
  // (An outerHTML swap replaces the target, so look in the document.)
  document.addEventListener("htmx:afterSwap", function () {
    var invalid = document.querySelector("form .field.invalid input, form .field.invalid select, form .field.invalid textarea, form .notice-bad");
    if (!invalid) return;
    invalid.scrollIntoView({ block: "center" });
    if (invalid.focus) invalid.focus({ preventScroll: true });
  });
  // Links to #revoke-ID press the matching action button.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[href^='#revoke-']");
    if (!link) return;
    event.preventDefault();
    var button = document.getElementById(link.getAttribute("href").slice(1));
    if (button) button.click();
  });
})();
