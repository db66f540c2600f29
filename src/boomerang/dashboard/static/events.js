// Boomerang dashboard: the events debugger's Live toggle. While it is on, the list (the server's escaped HTML of
// /events/live with the page's own query) is fetched again every few seconds and swapped in, one request at a time;
// the rows whose JSON was open stay open.
(function () {
  "use strict";

  function live(toggle) {
    var box = document.getElementById("live"), status = document.getElementById("live-status");
    var every = Number(toggle.dataset.liveSeconds || 3) * 1000, timer = null, busy = false;

    function say(state, text) {
      box.dataset.state = state;
      status.dataset.state = state;
      status.textContent = text;
      box.setAttribute("aria-busy", state === "busy" ? "true" : "false");
    }

    function remember(on) {  // the URL keeps the toggle, so a reload or the pager's links stay live
      var url = new URL(window.location.href);
      if (on) { url.searchParams.set("live", "1"); } else { url.searchParams.delete("live"); }
      window.history.replaceState(null, "", url);
    }

    function swap(html) {
      var open = Array.prototype.map.call(box.querySelectorAll("details[open]"), function (d) { return d.dataset.key; });
      box.innerHTML = html;
      box.querySelectorAll("details[data-key]").forEach(function (d) {
        if (open.indexOf(d.dataset.key) >= 0) { d.open = true; }
      });
    }

    function next() {
      clearTimeout(timer);
      if (toggle.checked) { timer = setTimeout(refresh, every); }
    }

    function refresh() {
      if (busy || !toggle.checked) { return; }
      if (document.hidden) { next(); return; }
      busy = true;
      say("busy", "Loading…");
      fetch(toggle.dataset.liveUrl + window.location.search, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (response) {
          if (response.redirected || response.status === 401 || response.status === 403) {
            toggle.checked = false;
            remember(false);
            throw new Error("you are signed out: reload the page");
          }
          return response.text().then(function (html) { return [response.status, html]; });
        })
        .then(function (answer) {
          swap(answer[1]);
          say(answer[0] === 200 ? "ok" : "error",
              answer[0] === 200 ? "Updated " + new Date().toLocaleTimeString() : "Fix the filters (status " + answer[0] + ")");
        }, function (problem) {
          say("error", "Could not refresh: " + (problem && problem.message ? problem.message : "no answer"));
        })
        .then(function () { busy = false; next(); });
    }

    toggle.addEventListener("change", function () {
      remember(toggle.checked);
      if (toggle.checked) { refresh(); } else { clearTimeout(timer); say("off", ""); }
    });
    if (toggle.checked) { refresh(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("live-toggle");
    if (toggle) { live(toggle); }
  });
})();
