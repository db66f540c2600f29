// A picker for customer fields: an <input data-customer-lookup> suggests the customers matching what is typed
// (a name, email, phone or id: /customers/lookup), each as its id labelled with who it is.
(function () {
  "use strict";
  var fields = document.querySelectorAll("input[data-customer-lookup]");
  Array.prototype.forEach.call(fields, function (input, n) {
    var list = document.createElement("datalist");
    list.id = "customer-lookup-" + n;
    input.setAttribute("list", list.id);
    input.parentNode.appendChild(list);
    var timer = null, asked = "";
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        if (q.length < 2 || q === asked) return;
        asked = q;
        fetch("/customers/lookup?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { customers: [] }; })
          .then(function (body) {
            if (input.value.trim() !== q) return;
            list.textContent = "";
            body.customers.forEach(function (c) {
              var option = document.createElement("option");
              option.value = c.id;
              option.label = c.label;
              option.textContent = c.label;
              list.appendChild(option);
            });
          })
          .catch(function () {});
      }, 200);
    });
  });
})();
