// The cashier page: tabs of the guest panel, the amount left to pay, keyboard use (Esc
// clears, Enter submits natively) and the camera scan of a card's QR code.
(function () {
  "use strict";

  function paneOf(card, name) {
    card.querySelectorAll("[data-pane]").forEach(function (pane) {
      pane.hidden = pane.dataset.pane !== name;
    });
    card.querySelectorAll("[data-tab]").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    });
    var first = card.querySelector('[data-pane="' + name + '"] input:not([type=hidden])');
    if (first) { first.focus(); }
  }

  function rubles(text) {
    var value = parseFloat(String(text || "").replace(/[\s\u00a0]/g, "").replace(",", "."));
    return isNaN(value) ? 0 : value;
  }

  function updateToPay(form) {
    var out = form.querySelector("[data-to-pay] output");
    if (!out) { return; }
    var amount = rubles(form.elements.amount.value);
    var points = parseInt(form.elements.points.value || "0", 10) || 0;
    out.textContent = Math.max(0, amount - points).toLocaleString(document.documentElement.lang, { style: "currency", currency: "RUB" });
  }

  document.addEventListener("click", function (event) {
    var tab = event.target.closest("[data-tab]");
    if (tab) { paneOf(tab.closest(".guest-card"), tab.dataset.tab); return; }
    var found = event.target.closest("button.found");
    if (found) {
      var query = document.getElementById("query");
      query.value = found.dataset.code;
      htmx.trigger(document.getElementById("identify"), "submit");
    }
  });

  document.addEventListener("input", function (event) {
    var form = event.target.closest('form[data-pane="redeem"]');
    if (form) { updateToPay(form); }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var card = event.detail.target.querySelector && event.detail.target.querySelector(".guest-card");
    if (card) {
      var redeem = card.querySelector('form[data-pane="redeem"]');
      if (redeem) { updateToPay(redeem); }
      var sale = card.querySelector('[data-pane="sale"] input[name=amount]');
      if (sale) { sale.focus(); }
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var guest = document.getElementById("guest");
    if (guest) { guest.innerHTML = ""; }
    var query = document.getElementById("query");
    if (query) { query.value = ""; query.focus(); }
    var notice = document.getElementById("notice");
    if (notice) { notice.innerHTML = ""; }
  });

  var scanner = null;
  document.addEventListener("click", function (event) {
    if (!event.target.closest("#scan") || typeof Html5Qrcode === "undefined") { return; }
    var box = document.getElementById("camera");
    if (scanner) { scanner.stop().catch(function () {}); scanner = null; box.hidden = true; return; }
    box.hidden = false;
    scanner = new Html5Qrcode("camera");
    var box70 = function (w, h) { var side = Math.floor(Math.min(w, h) * 0.7); return { width: side, height: side }; };
    scanner.start({ facingMode: "environment" }, { fps: 10, qrbox: box70 }, function (text) {
      scanner.stop().catch(function () {});
      scanner = null;
      box.hidden = true;
      document.getElementById("query").value = text;
      htmx.trigger(document.getElementById("identify"), "submit");
    }).catch(function () { box.hidden = true; scanner = null; });
  });
})();
