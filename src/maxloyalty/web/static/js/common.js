// Every htmx post carries the page's CSRF token; the language switch keeps the page.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });
  // A new request's answer replaces the last refusal; an old one must not linger.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var notice = document.getElementById("notice");
    if (notice && event.detail.elt.closest("form, [hx-get], [hx-post]")) { notice.innerHTML = ""; }
  });
})();
