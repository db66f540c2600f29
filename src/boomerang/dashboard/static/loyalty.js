// Boomerang dashboard, the loyalty pages: forms that take a while say so, and a pool's background generation
// shows its progress until it is done (then the page reloads with the pool's new counts).
(function () {
  "use strict";

  // <form data-busy="Generating…">: once sent, its button says what is going on and cannot be pressed twice.
  function busyOnSubmit(form) {
    form.addEventListener("submit", function () {
      if (form.dataset.state === "busy") { return; }
      var button = form.querySelector("button[type=submit]");
      form.dataset.state = "busy";
      form.setAttribute("aria-busy", "true");
      if (button) {
        button.textContent = form.dataset.busy;
        // disabled after this event, so that the form is still sent
        setTimeout(function () { button.disabled = true; }, 0);
      }
    });
  }

  // <div data-progress-url="...">: polls the generation's progress into its <progress> and text.
  function follow(box) {
    var bar = box.querySelector("progress"), text = box.querySelector("[data-progress-text]");
    var every = 1000;
    function show(body) {
      if (!body.running) {
        window.location.replace(window.location.pathname + "?finished=1#generation");
        return;
      }
      bar.max = body.count;
      bar.value = body.done;
      text.textContent = body.done.toLocaleString("en-US") + " of " + body.count.toLocaleString("en-US") +
        " codes (" + Math.floor(body.share * 100) + " %)";
      setTimeout(poll, every);
    }
    function poll() {
      fetch(box.dataset.progressUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.json(); })
        .then(show, function () {
          text.textContent = "No answer from the server: retrying…";
          setTimeout(poll, every * 3);
        });
    }
    setTimeout(poll, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-busy]").forEach(busyOnSubmit);
    document.querySelectorAll("[data-progress-url]").forEach(follow);
  });
})();
