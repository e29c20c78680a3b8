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
  // A file upload (form[data-upload]) goes straight to the API with the session's CSRF token,
  // showing the bytes sent, then the answer: how many items were imported, or the rows refused.
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function notice(tone, text) {
    return el("div", "notice notice-" + tone, text);
  }
  function rowReport(error) {
    var wrap = el("div", "table-wrap");
    var table = el("table");
    table.id = "upload-errors";
    var head = el("thead");
    var tr = el("tr");
    ["Row", "Column", "Problem"].forEach(function (name) { tr.appendChild(el("th", "", name)); });
    head.appendChild(tr);
    table.appendChild(head);
    var body = el("tbody");
    (error.rows || []).forEach(function (row) {
      var line = el("tr");
      line.appendChild(el("td", "", String(row.row)));
      line.appendChild(el("td", "mono", row.column || "–"));
      line.appendChild(el("td", "", row.message));
      body.appendChild(line);
    });
    table.appendChild(body);
    wrap.appendChild(table);
    return wrap;
  }
  function upload(form, event) {
    event.preventDefault();
    var input = form.querySelector("input[type=file]");
    var result = form.querySelector(".upload-result");
    var progress = form.querySelector(".upload-progress");
    var bar = progress.querySelector("progress");
    var status = progress.querySelector(".upload-status");
    var button = form.querySelector("button[type=submit]");
    result.textContent = "";
    var file = input.files && input.files[0];
    if (!file) {
      result.appendChild(notice("bad", "Choose a file to upload."));
      return;
    }
    var extension = (file.name.split(".").pop() || "").toLowerCase();
    var type = input.getAttribute("data-type-" + extension);
    if (!type) {
      result.appendChild(notice("bad", "“" + file.name + "” is not a CSV, JSON Lines or XLSX file."));
      return;
    }
    var choice = form.querySelector("select[name=choice]").value;
    var url = form.getAttribute("data-upload").replace("{choice}", encodeURIComponent(choice));
    var csrf = document.querySelector("meta[name=csrf-token]");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("content-type", type);
    if (csrf) xhr.setRequestHeader("x-csrf-token", csrf.getAttribute("content"));
    progress.hidden = false;
    bar.value = 0;
    status.textContent = "Sending…";
    button.disabled = true;
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      bar.value = Math.round((e.loaded / e.total) * 100);
      status.textContent = Math.round(e.loaded / 1024) + " of " + Math.round(e.total / 1024) + " KiB sent";
    };
    xhr.upload.onload = function () {
      bar.value = 100;
      status.textContent = "Sent; checking every row…";
    };
    xhr.onerror = function () {
      button.disabled = false;
      status.textContent = "";
      result.appendChild(notice("bad", "The upload did not reach the server; nothing was imported."));
    };
    xhr.onload = function () {
      button.disabled = false;
      var answer = null;
      try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
      if (xhr.status === 201 && answer) {
        status.textContent = "Done.";
        var ok = notice("ok", "Imported " + answer.imported + " work items from “" + file.name + "”. ");
        var link = el("a", "", "See the work items");
        link.href = form.getAttribute("data-done");
        ok.appendChild(link);
        result.appendChild(ok);
        form.reset();
        return;
      }
      status.textContent = "Refused.";
      var error = (answer && answer.error) || { message: "The server answered " + xhr.status + "." };
      result.appendChild(notice("bad", error.message));
      if (error.rows && error.rows.length) {
        result.appendChild(rowReport(error));
        if (error.total_errors > error.rows.length) {
          result.appendChild(el("p", "muted", "…and " + (error.total_errors - error.rows.length) + " more rows with problems."));
        }
      }
    };
    xhr.send(file);
  }
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-upload]");
    if (form) upload(form, event);
  });
})();
