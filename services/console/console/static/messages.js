// The wording page's live preview: as the admin types, the draft is sent to the console (same origin,
// with the form's CSRF token) and the preview is replaced. Without JavaScript, "Show the preview" does it.
(function () {
  "use strict";
  var form = document.getElementById("wording-form");
  var preview = document.getElementById("preview");
  if (!form || !preview || !window.fetch || !window.FormData) { return; }
  var timer = null;
  var asked = 0;
  function show(data) {
    preview.textContent = "";
    if (data.preview) {
      if (data.preview.subject) {
        var p = document.createElement("p");
        var strong = document.createElement("strong");
        strong.textContent = form.dataset.subjectLabel || "Subject";
        p.appendChild(strong);
        p.appendChild(document.createTextNode(": "));
        var span = document.createElement("span");
        span.dataset.part = "subject";
        span.textContent = data.preview.subject;
        p.appendChild(span);
        preview.appendChild(p);
      }
      var pre = document.createElement("pre");
      pre.dataset.part = "text";
      pre.textContent = data.preview.text || "";
      preview.appendChild(pre);
    } else {
      var problem = document.createElement("p");
      problem.className = "field-error";
      var messages = [];
      Object.keys(data.errors || {}).forEach(function (k) { messages = messages.concat(data.errors[k]); });
      problem.textContent = messages.join(" ");
      preview.appendChild(problem);
    }
  }
  function refresh() {
    var mine = ++asked;
    fetch(form.dataset.preview, {method: "POST", body: new FormData(form), credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && mine === asked) { show(data); } })
      .catch(function () { /* the button still works */ });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
})();
