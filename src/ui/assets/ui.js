// appliance's page: keeps the live region (#live) current. While its data-active is "true" (a
// migration runs, a bundle is being verified), it fetches data-live-src every 2 seconds and puts the
// answer in its place, keeping open the <details> that were open, and leaving it be while someone
// types into it. A 401 means the session ended: reload, which shows the sign-in form. Without
// scripts, the page reloads itself instead (a <noscript> refresh).
"use strict";
(function () {
  function tick() {
    var box = document.getElementById("live");
    if (!box || box.dataset.active !== "true") return;
    var focused = document.activeElement;
    if (focused && box.contains(focused) && focused.matches("input, select, textarea")) return;
    fetch(box.dataset.liveSrc, { credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) {
          window.location.reload();
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var t = document.createElement("template");
        t.innerHTML = html.trim();
        var next = t.content.firstElementChild;
        if (!next || next.id !== "live") return;
        box.querySelectorAll("details[open]").forEach(function (d) {
          var same = d.id && next.querySelector("#" + CSS.escape(d.id));
          if (same) same.open = true;
        });
        box.replaceWith(next);
      })
      .catch(function () {});
  }
  window.setInterval(tick, 2000);
})();
