// Boomerang dashboard, the predictions page: while an evaluation runs in the background, asks every two seconds
// whether it is done, then reloads the page to show it.
(function () {
  "use strict";

  function follow(box) {
    function poll() {
      fetch(box.dataset.evaluationUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.json(); })
        .then(function (body) {
          if (body.running) { setTimeout(poll, 2000); } else { window.location.replace(window.location.pathname); }
        }, function () { setTimeout(poll, 6000); });
    }
    setTimeout(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-evaluation-url]").forEach(follow);
  });
})();
