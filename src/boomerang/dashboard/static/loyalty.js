// Boomerang dashboard, the loyalty pages: a pool's background generation shows its progress until it is done
// (then the page reloads with the pool's new counts).
(function () {
  "use strict";

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
    document.querySelectorAll("[data-progress-url]").forEach(follow);
  });
})();
