// The Telegram Mini App around the hosted checkout (checkout.js runs the checkout itself):
// Telegram's colours, Stars through Telegram.WebApp.openInvoice, and the payer's own
// purchases once Krypton has verified initData. Works with whatever Telegram.WebApp the host
// provides (Telegram's own script, served by Krypton, or a test's stub); outside Telegram the
// checkout works as on /pay/{id}. Every word comes from the server; shown as text, never HTML.
(function () {
  "use strict";
  var mini = JSON.parse(document.getElementById("miniapp-config").textContent);
  var text = mini.text;
  var $ = function (id) { return document.getElementById(id); };
  var tg = window.Telegram && window.Telegram.WebApp;
  var root = document.documentElement;

  // --- Telegram's theme ----------------------------------------------------------------
  // themeParams' keys (bg_color, button_text_color, …) as --tg-theme-bg-color etc., which
  // miniapp.css reads with the checkout's colours as the fallback.
  function applyTheme() {
    var params = (tg && tg.themeParams) || {};
    Object.keys(params).forEach(function (key) {
      var value = String(params[key]);
      if (/^#[0-9a-f]{3,8}$/i.test(value)) {  // a colour, nothing that could break out of CSS
        root.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), value);
      }
    });
    root.dataset.scheme = tg && tg.colorScheme === "dark" ? "dark" : "light";
  }

  // --- the payer's purchases --------------------------------------------------------------
  var token = null;
  var next = null;  // the last id shown, for the next page
  function note(message) { $("purchases-note").textContent = message || ""; }

  function purchaseItem(p) {
    var item = document.createElement("li");
    item.className = "purchase" + (p.id === mini.invoice_id ? " current" : "");
    item.dataset.id = p.id;
    var what = document.createElement("span");
    what.className = "what";
    var link = document.createElement("a");
    link.href = p.url;
    link.textContent = p.description || p.id;
    what.appendChild(link);
    var sum = document.createElement("span");
    sum.className = "sum";
    sum.textContent = p.amount + " " + p.currency;
    var when = document.createElement("span");
    when.className = "when";
    when.textContent = new Date(p.created_at).toLocaleDateString(mini.lang, { day: "numeric", month: "short", year: "numeric" });
    var state = document.createElement("span");
    state.className = "state " + p.status;
    state.textContent = p.status_text;
    [what, sum, when, state].forEach(function (part) { item.appendChild(part); });
    return item;
  }

  function loadPurchases(more) {
    if (!token) { return Promise.resolve(); }
    var url = mini.history_url + "?limit=10&lang=" + mini.lang +
      (more && next ? "&starting_after=" + encodeURIComponent(next) : "");
    return fetch(url, { headers: { Authorization: "Bearer " + token, Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { token = null; return startSession().then(function () { return null; }); }
        if (response.status === 403) { note(text.not_owner); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (page) {
        if (!page) { return; }
        var list = $("purchase-list");
        if (!more) { list.textContent = ""; }
        page.data.forEach(function (p) { list.appendChild(purchaseItem(p)); });
        next = page.data.length ? page.data[page.data.length - 1].id : next;
        $("purchases-more").hidden = !page.has_more;
        note(list.children.length ? "" : text.no_purchases);
      })
      .catch(function () { /* offline for a moment: the list stays as it was */ });
  }

  // initData goes to Krypton, which checks Telegram's signature; nothing here trusts it.
  var sessions = 0;
  function startSession() {
    if (!tg || !tg.initData) { note(text.outside_telegram); return Promise.resolve(); }
    if (++sessions > 3) { return Promise.resolve(); }  // a token that keeps failing: stop asking
    return fetch(mini.session_url, {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ init_data: tg.initData })
    }).then(function (response) {
      if (!response.ok) { note(text.session_failed); return null; }
      return response.json();
    }).then(function (session) {
      if (!session) { return; }
      // The page in the user's Telegram language, unless one was chosen in the URL.
      if (!mini.lang_given && session.lang !== mini.lang) {
        var url = new URL(window.location.href);
        url.searchParams.set("lang", session.lang);
        window.location.replace(url.toString());
        return;
      }
      if (!session.owner) { note(text.not_owner); return; }
      token = session.token;
      return loadPurchases(false);
    }).catch(function () { note(text.session_failed); });
  }
  $("purchases-more").addEventListener("click", function () { loadPurchases(true); });

  // --- Stars, paid inside Telegram ----------------------------------------------------------
  var starsLink = document.querySelector('[data-field="stars_link"]');
  function detail(message) { $("state-detail").textContent = message; }
  function payWithStars() {
    if (!tg || typeof tg.openInvoice !== "function") {  // not in Telegram: the link's page
      window.location.assign(starsLink.href);
      return;
    }
    fetch(mini.stars_url, { method: "POST", headers: { Accept: "application/json" } })
      .then(function (response) { if (!response.ok) { throw new Error("refused"); } return response.json(); })
      .then(function (body) {
        tg.openInvoice(body.link, function (status) {
          // Telegram says how its payment form ended; the invoice itself turns paid when
          // Krypton's bot is told, which the checkout's polling shows.
          var said = { paid: text.stars_paid, cancelled: text.stars_cancelled, failed: text.stars_failed }[status];
          if (said) { detail(said); }
          if (status === "paid" && tg.HapticFeedback) { tg.HapticFeedback.notificationOccurred("success"); }
        });
      })
      .catch(function () { detail(text.stars_failed); });
  }
  if (starsLink) {
    starsLink.addEventListener("click", function (event) { event.preventDefault(); payWithStars(); });
  }

  // Telegram's own bottom button pays with Stars while the Stars option is on screen.
  function syncMainButton() {
    if (!tg || !tg.MainButton || !starsLink) { return; }
    var panel = starsLink.closest(".panel");
    var shown = !$("pay").hidden && panel && !panel.hidden;
    if (shown) { tg.MainButton.setText(text.pay_stars); tg.MainButton.show(); } else { tg.MainButton.hide(); }
  }
  if (tg && tg.MainButton && starsLink) { tg.MainButton.onClick(payWithStars); }

  // The checkout's script changes the state and the visible panel; follow it.
  var lastState = $("status").dataset.state;
  new MutationObserver(function () {
    syncMainButton();
    var state = $("status").dataset.state;
    if (state !== lastState) {
      lastState = state;
      loadPurchases(false);  // the list shows this invoice's new status too
      if (state === "paid" && tg && tg.MainButton) { tg.MainButton.hide(); }
    }
  }).observe($("checkout"), { subtree: true, attributes: true, attributeFilter: ["hidden", "data-state"] });

  applyTheme();
  if (tg) {
    if (typeof tg.onEvent === "function") { tg.onEvent("themeChanged", applyTheme); }
    if (typeof tg.ready === "function") { tg.ready(); }
    if (typeof tg.expand === "function") { tg.expand(); }
  }
  syncMainButton();
  startSession();
})();
