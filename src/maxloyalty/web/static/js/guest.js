// The guest cabinet in Telegram or a browser: sign in by Telegram's initData with no
// typing, follow Telegram's theme and buttons, and redraw the card's figures when a live
// update says they changed (server-sent events; the browser reconnects by itself).
(function () {
  "use strict";
  var root = document.querySelector("[data-app]");
  if (!root) { return; }
  var app = root.dataset.app;
  var tg = window.Telegram && window.Telegram.WebApp;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;

  if (tg) {
    tg.ready();
    if (tg.expand) { tg.expand(); }
    document.body.classList.add(tg.colorScheme === "dark" ? "theme-dark" : "theme-light");
    if (tg.BackButton) {
      if (location.pathname !== app) {
        tg.BackButton.show();
        tg.BackButton.onClick(function () { history.length > 1 ? history.back() : location.assign(app); });
      } else {
        tg.BackButton.hide();
      }
    }
    var primary = document.querySelector("[data-main-button]");
    if (primary && tg.MainButton) {
      tg.MainButton.setText(primary.dataset.mainButton);
      tg.MainButton.show();
      tg.MainButton.onClick(function () { primary.click(); });
    }
  }

  function notice(text) {
    var box = document.getElementById("notice");
    box.innerHTML = "";
    var div = document.createElement("div");
    div.className = "notice notice-error";
    div.setAttribute("role", "alert");
    div.textContent = text;
    box.appendChild(div);
  }

  if (root.dataset.signedIn === "false" && tg && tg.initData) {
    var waiting = document.querySelector(".telegram-only");
    if (waiting) { waiting.hidden = false; }
    fetch(app + "/telegram", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf, "HX-Request": "true" },
      body: new URLSearchParams({ init_data: tg.initData })
    }).then(function (response) {
      if (response.ok) { location.reload(); return; }
      return response.text().then(function (html) {
        var box = document.getElementById("notice");
        box.innerHTML = html;
        if (waiting) { waiting.hidden = true; }
      });
    }).catch(function () { notice(document.documentElement.lang === "en" ? "No connection." : "Нет связи."); });
  }

  if (root.dataset.card && window.EventSource) {
    var source = new EventSource(app + "/live?card=" + encodeURIComponent(root.dataset.card));
    source.addEventListener("balance", function () {
      htmx.trigger(document.body, "balance-changed");
      if (tg && tg.HapticFeedback) { tg.HapticFeedback.notificationOccurred("success"); }
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "summary") {
      event.detail.target.classList.remove("live-flash");
      void event.detail.target.offsetWidth;
      event.detail.target.classList.add("live-flash");
    }
  });
})();

// The one-minute code's countdown, drawn from the seconds the server said are left.
(function () {
  "use strict";
  setInterval(function () {
    var box = document.getElementById("rotating");
    if (!box) { return; }
    var left = Math.max(0, Math.round((Date.parse(box.dataset.expires) - Date.now()) / 1000));
    var total = 60;
    var bar = box.querySelector(".countdown span");
    if (bar) { bar.style.width = (100 * left / total) + "%"; }
    var label = box.querySelector("[data-countdown]");
    if (label) { label.textContent = label.textContent.replace(/\d+/, String(left)); }
  }, 1000);
})();
