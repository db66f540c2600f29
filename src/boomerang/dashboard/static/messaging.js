// Boomerang dashboard: the template editor's live preview. The definition's text goes (debounced) to the preview
// endpoint; the answer fills each channel's card as text, and the email's HTML goes only into the sandboxed iframe.
(function () {
  "use strict";

  function editor(form) {
    var definition = form.querySelector("textarea[name=definition]"), customer = form.querySelector("input[name=customer]");
    var box = document.getElementById("preview"), status = document.getElementById("preview-status");
    var errors = document.getElementById("preview-errors");
    var token = form.querySelector("input[name=csrf_token]").value;

    function fill(card, result) {
      card.querySelectorAll("[data-field]").forEach(function (el) {
        var field = el.dataset.field, value = result[field];
        if (field === "error") {
          el.textContent = value || "";
          el.hidden = !value;
        } else if (field === "html") {
          el.srcdoc = value || "";
        } else if (field === "buttons") {
          el.replaceChildren();
          (value || []).forEach(function (b) {
            var item = document.createElement("li");
            item.textContent = b.label + " → " + b.url;
            el.appendChild(item);
          });
        } else {
          el.textContent = value || "";
        }
      });
    }

    function show(code, body) {
      errors.replaceChildren();
      if (code === 200) {
        box.dataset.state = "ok";
        status.textContent = "Locale " + body.locale + ", " + (body.customer ? "customer " + body.customer : "a sample customer") + ".";
        errors.hidden = true;
        box.querySelectorAll(".channel-preview").forEach(function (card) {
          fill(card, body.channels[card.dataset.channel] || {});
        });
        return;
      }
      box.dataset.state = "error";  // the last good preview stays, dimmed, under the errors
      status.textContent = "Fix the definition to see it.";
      window.boomerang.listErrors(errors, body, code, "definition");
    }

    var ask = window.boomerang.previewer(form.dataset.templatePreview, token, function () {
      return {definition: definition.value, customer: customer.value};
    }, function () { box.dataset.state = "busy"; }, show);
    var later = window.boomerang.debounced(ask);
    definition.addEventListener("input", later);
    customer.addEventListener("input", later);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-template-preview]").forEach(editor);
  });
})();
