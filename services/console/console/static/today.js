// Today follows what happens: every few seconds the sections are asked for again (same origin, the
// session cookie) and swapped in when they changed. Without JavaScript, reloading the page does the same.
(function () {
  "use strict";
  var box = document.getElementById("today-sections");
  if (!box || !window.fetch) { return; }
  var seconds = parseInt(box.dataset.seconds, 10) || 5;
  function refresh() {
    fetch(box.dataset.refresh, {credentials: "same-origin", headers: {"Accept": "text/html"}, redirect: "manual"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html.trim() !== box.innerHTML.trim()) {
          var focused = document.activeElement && box.contains(document.activeElement);
          if (!focused) { box.innerHTML = html; }
        }
      })
      .catch(function () { /* try again next time */ })
      .then(function () { setTimeout(refresh, seconds * 1000); });
  }
  setTimeout(refresh, seconds * 1000);
})();
