// Today follows what happens: every few seconds the sections are asked for again (same origin, the
// session cookie) and swapped in when they changed. Without JavaScript, reloading the page does the same.
// A tab nobody is looking at asks nothing (each refresh is six calls to the services, and coordinators keep
// Today open all day); shown again, it asks at once.
(function () {
  "use strict";
  var box = document.getElementById("today-sections");
  if (!box || !window.fetch) { return; }
  var seconds = parseInt(box.dataset.seconds, 10) || 5;
  var timer = null, asking = false;
  function refresh() {
    timer = null;
    if (document.hidden || asking) { return; }
    asking = true;
    fetch(box.dataset.refresh, {credentials: "same-origin", headers: {"Accept": "text/html"}, redirect: "manual"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html.trim() !== box.innerHTML.trim()) {
          var focused = document.activeElement && box.contains(document.activeElement);
          if (!focused) { box.innerHTML = html; }
        }
      })
      .catch(function () { /* try again next time */ })
      .then(function () {
        asking = false;
        if (!document.hidden) { timer = setTimeout(refresh, seconds * 1000); }
      });
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !asking) {
      clearTimeout(timer);
      refresh();
    }
  });
  timer = setTimeout(refresh, seconds * 1000);
})();
