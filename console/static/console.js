// The console's only script of its own: live tail pause/resume and the redrive dry run.
// htmx and its SSE extension do the rest; nothing here builds markup from event data.
(function () {
  "use strict";

  function setupTail(tail) {
    var paused = false;
    var missed = 0;
    var button = document.getElementById("pause");
    var status = document.getElementById("tail-status");
    var count = document.getElementById("paused-count");
    var dropped = document.getElementById("dropped");
    var droppedTotal = 0;

    button.addEventListener("click", function () {
      paused = !paused;
      button.textContent = paused ? "Resume" : "Pause";
      status.textContent = paused ? "Paused" : "Live";
      if (!paused) { missed = 0; count.textContent = ""; }
    });
    tail.addEventListener("htmx:sseOpen", function (evt) {
      status.textContent = paused ? "Paused" : "Live";
      var source = evt.detail.source;
      source.addEventListener("dropped", function (msg) {
        droppedTotal += parseInt(msg.data, 10) || 0;
        dropped.textContent = "Dropped " + droppedTotal + " event(s) to keep up.";
      });
      source.addEventListener("problem", function (msg) {
        status.textContent = msg.data;
      });
    });
    tail.addEventListener("htmx:sseError", function () {
      status.textContent = "Disconnected; retrying…";
    });
    tail.addEventListener("htmx:sseBeforeMessage", function (evt) {
      if (paused) {
        evt.preventDefault();
        missed += 1;
        count.textContent = missed + " arrived while paused (not shown)";
      }
    });
  }

  function setupRedrive(form) {
    var button = document.getElementById("redrive-button");
    var output = document.getElementById("redrive-count");
    var counted = false;
    form.addEventListener("submit", function (evt) {
      if (counted) { return; }
      evt.preventDefault();
      var body = new FormData(form);
      body.append("dry_run", "1");
      fetch(form.getAttribute("data-dry-run"), {method: "POST", body: body, headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.error) { output.textContent = data.detail; return; }
          counted = true;
          output.textContent = "Dry run: " + data.pending + " pending dead letter(s) would be redriven.";
          button.textContent = "Confirm: redrive " + data.pending;
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tail = document.getElementById("tail");
    if (tail) { setupTail(tail); }
    var redrive = document.getElementById("redrive");
    if (redrive) { setupRedrive(redrive); }
  });
})();
