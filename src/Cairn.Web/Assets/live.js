// Live refresh without a page reload: every element marked data-live is replaced by the same element of a fresh
// copy of the page, fetched every few seconds. Without JavaScript the page is complete as served; this only
// saves the reader a reload. Loaded as an external file so the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-live]");
  if (regions.length === 0 || !window.fetch || !window.DOMParser) return;
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "5", 10);
  function refresh() {
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) old.replaceWith(document.importNode(next, true));
        });
      })
      .catch(function () { /* the next tick tries again */ })
      .finally(function () { window.setTimeout(refresh, seconds * 1000); });
  }
  window.setTimeout(refresh, seconds * 1000);
})();
