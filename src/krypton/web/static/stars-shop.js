// The Stars shop's page (/stars, /tg/stars) and an order's page (/stars/orders/{id}).
// Talks to /api/v1/shop only; every word comes from the server in #shop-config and is shown
// as text, never as HTML. The buyer's session is an HttpOnly cookie on the web (this script
// never sees it) or, inside Telegram, a token kept in memory for this visit.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("shop-config").textContent);
  var text = config.text;
  var $ = function (id) { return document.getElementById(id); };
  var view = $("shop").dataset.view;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, key) { return key in values ? String(values[key]) : all; });
  }
  function show(el, visible) { if (el) { el.hidden = !visible; } }

  var token = null;  // the Mini App's bearer token (web: the cookie instead)
  function api(method, path, body, extra) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (token) { headers.Authorization = "Bearer " + token; }
    Object.keys(extra || {}).forEach(function (k) { headers[k] = extra[k]; });
    return fetch(config.api + path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 204) { return { ok: true, status: 204, body: null }; }
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, body: data };
      });
    });
  }
  function errorText(result, fallback) {
    return (result.body && result.body.error && result.body.error.message) || fallback;
  }

  // --- an order's page: follow its status ------------------------------------------------
  if (view === "order") {
    var final = ["delivered", "refunded", "expired"];
    var pollOrder = function () {
      api("GET", "/orders/" + encodeURIComponent(config.order_id)).then(function (result) {
        if (!result.ok) { return; }
        var order = result.body;
        var box = $("order-status");
        box.dataset.status = order.status;
        box.className = "status tone-" + (order.status === "delivered" ? "good"
          : order.status === "failed" || order.status === "expired" ? "bad"
          : order.status === "refunded" ? "warn" : "info");
        $("order-state").textContent = text["order_" + order.status] || order.status;
        $("order-hint").textContent = text["order_hint_" + order.status] || "";
        $("order-failure").textContent = order.failure || "";
        show($("order-failure"), !!order.failure);
        show($("order-pay"), order.status === "awaiting_payment");
        if (final.indexOf(order.status) < 0) { setTimeout(pollOrder, config.poll_seconds * 1000); }
      }, function () { setTimeout(pollOrder, config.poll_seconds * 4000); });
    };
    if (final.indexOf(config.status) < 0) { setTimeout(pollOrder, config.poll_seconds * 1000); }
    return;
  }

  // --- Telegram's theme (inside the Mini App) ------------------------------------------------
  var tg = config.telegram && window.Telegram && window.Telegram.WebApp;
  if (tg) {
    var params = tg.themeParams || {};
    Object.keys(params).forEach(function (key) {
      var value = String(params[key]);
      if (/^#[0-9a-f]{3,8}$/i.test(value)) {  // a colour, nothing that could break out of CSS
        document.documentElement.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), value);
      }
    });
    document.documentElement.dataset.scheme = tg.colorScheme === "dark" ? "dark" : "light";
    if (tg.ready) { tg.ready(); }
  }

  // --- the recipient ------------------------------------------------------------------------
  var recipient = null;  // the looked-up username, once known
  var lookups = 0;
  var input = $("recipient");
  var note = $("recipient-note");
  var USERNAME = /^[A-Za-z][A-Za-z0-9_]{3,30}[A-Za-z0-9]$/;

  function hue(name) {
    var sum = 0;
    for (var i = 0; i < name.length; i++) { sum = (sum * 31 + name.charCodeAt(i)) % 7; }
    return String(sum);
  }
  function setNote(message, bad) {
    note.textContent = message;
    note.classList.toggle("bad", !!bad);
    input.setAttribute("aria-invalid", bad ? "true" : "false");
  }
  function lookup() {
    var name = input.value.trim().replace(/^@/, "");
    if (input.value !== name) { input.value = name; }  // the "@" is already shown before the field
    recipient = null;
    show($("recipient-card"), false);
    updatePay();
    if (!name) { return; }
    if (!USERNAME.test(name)) { setNote(text.shop_recipient_unknown, true); return; }
    var mine = ++lookups;
    setNote(text.shop_checking, false);
    api("GET", "/recipients/" + encodeURIComponent(name)).then(function (result) {
      if (mine !== lookups) { return; }  // a newer lookup is under way
      if (!result.ok) { setNote(errorText(result, text.shop_recipient_unknown), true); return; }
      var found = result.body;
      recipient = found.username;
      $("avatar").textContent = found.initials;
      $("avatar").dataset.hue = hue(found.username);
      $("recipient-name").textContent = found.name;
      $("recipient-handle").textContent = "@" + found.username;
      show($("recipient-card"), true);
      setNote("", false);
      updatePay();
    }, function () { if (mine === lookups) { setNote(text.shop_recipient_unknown, true); } });
  }
  var typing = null;
  input.addEventListener("input", function () {
    recipient = null;
    show($("recipient-card"), false);
    updatePay();
    clearTimeout(typing);
    typing = setTimeout(lookup, 600);
  });
  input.addEventListener("change", function () { clearTimeout(typing); lookup(); });
  $("check").addEventListener("click", function () { clearTimeout(typing); lookup(); });

  // --- quantity and price -------------------------------------------------------------------
  var quantityInput = $("quantity");
  var quotes = {};  // asset -> the latest quote for the current quantity
  var presets = Array.prototype.slice.call(document.querySelectorAll(".preset"));

  // The product: Stars (quantity = Stars) or Telegram Premium (quantity = months).
  function product() {
    var checked = document.querySelector("input[name=product]:checked");
    return checked ? checked.value : "stars";
  }
  function quantity() {
    if (product() === "premium") {
      var months = document.querySelector("input[name=months]:checked");
      return months ? Number(months.value) : null;
    }
    var value = Number(quantityInput.value);
    return Number.isInteger(value) && value >= config.minimum && value <= config.maximum ? value : null;
  }
  function asset() {
    var checked = document.querySelector("input[name=asset]:checked");
    return checked ? checked.value : "TON";
  }
  function markPresets() {
    presets.forEach(function (b) { b.setAttribute("aria-pressed", String(Number(b.dataset.quantity) === Number(quantityInput.value))); });
  }
  var priceTimer = null;
  var priceRound = 0;
  function refreshPrices() {
    clearTimeout(priceTimer);
    var q = quantity();
    quotes = {};
    document.querySelectorAll("[data-total]").forEach(function (el) { el.textContent = "…"; });
    updatePay();
    quantityInput.setAttribute("aria-invalid", q === null ? "true" : "false");
    $("quantity-note").classList.toggle("bad", q === null);
    if (q === null) { return; }
    var round = ++priceRound;
    var kind = product();
    if (kind === "premium") {
      // Each period's price in TON beside it, to compare before choosing.
      (config.premium_months || []).forEach(function (m) {
        var cell = document.querySelector("[data-premium-price=\"" + m + "\"]");
        api("GET", "/quote?product=premium&quantity=" + m + "&asset=TON").then(function (result) {
          if (round !== priceRound) { return; }
          // Rounded to compare at a glance (a phone's narrow card); the exact total is below.
          cell.textContent = result.ok ? "≈ " + Number(result.body.total).toFixed(2) + " " + text.asset_TON : "—";
        }, function () { if (round === priceRound) { cell.textContent = "—"; } });
      });
    }
    config.assets.forEach(function (code) {
      api("GET", "/quote?product=" + kind + "&quantity=" + q + "&asset=" + code).then(function (result) {
        if (round !== priceRound) { return; }
        var el = document.querySelector("[data-total=" + code + "]");
        if (!result.ok) { el.textContent = "—"; $("price-note").textContent = errorText(result, text.shop_price_failed); return; }
        quotes[code] = result.body;
        el.textContent = result.body.total + " " + text["asset_" + code];
        // The same total in the other currency, for reading (≈ USDT for a TON price).
        var equivalents = result.body.equivalents || {};
        document.querySelector("[data-equivalent=" + code + "]").textContent = Object.keys(equivalents).map(
          function (c) { return "≈ " + equivalents[c] + " " + c; }).join(" · ");
        updatePay();
      }, function () { if (round === priceRound) { $("price-note").textContent = text.shop_price_failed; } });
    });
    priceTimer = setTimeout(refreshPrices, config.price_seconds * 1000);
  }
  presets.forEach(function (button) {
    button.addEventListener("click", function () {
      quantityInput.value = button.dataset.quantity;
      markPresets();
      refreshPrices();
    });
  });
  var quantityTyping = null;
  quantityInput.addEventListener("input", function () {
    markPresets();
    clearTimeout(quantityTyping);
    quantityTyping = setTimeout(refreshPrices, 400);
  });
  document.querySelectorAll("input[name=asset]").forEach(function (radio) { radio.addEventListener("change", updatePay); });
  document.querySelectorAll("input[name=product]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      var premium = product() === "premium";
      show($("premium-choice"), premium);
      show($("stars-choice"), !premium);
      refreshPrices();
    });
  });
  document.querySelectorAll("input[name=months]").forEach(function (radio) { radio.addEventListener("change", refreshPrices); });

  // --- pay ----------------------------------------------------------------------------------
  var pay = $("pay");
  var idempotency = null;  // one key per attempt: a retry of the same click makes no second order
  var busy = false;
  function updatePay() {
    var quote = quotes[asset()];
    var ready = !!recipient && quantity() !== null && !!quote && !busy;
    pay.disabled = !ready;
    pay.textContent = busy ? text.shop_creating
      : quote && recipient ? fill(text.shop_pay, { total: quote.total, asset: text["asset_" + asset()] })
      : text.shop_pay_disabled;
    var fee = quote ? fill(text.shop_fee_included, { fee: quote.fee, asset: text["asset_" + asset()] }) : "";
    pay.title = fee;
    if (quote) { $("price-note").textContent = fee; }
  }
  $("buy").addEventListener("submit", function (event) {
    event.preventDefault();
    if (pay.disabled) { return; }
    busy = true;
    show($("pay-error"), false);
    updatePay();
    var order = { recipient: recipient, product: product(), quantity: quantity(), asset: asset() };
    var key = JSON.stringify(order);
    if (!idempotency || idempotency.order !== key) {
      idempotency = { order: key, key: "stars-" + (window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)) };
    }
    api("POST", "/orders", order, { "Idempotency-Key": idempotency.key }).then(function (result) {
      if (!result.ok || !result.body.checkout_url) {
        busy = false;
        $("pay-error").textContent = errorText(result, text.shop_order_failed);
        show($("pay-error"), true);
        updatePay();
        return;
      }
      var checkout = new URL(result.body.checkout_url, window.location.href);
      // Same origin: the path only, whatever host KRYPTON_PUBLIC_URL names.
      window.location.assign(checkout.pathname + (config.lang ? "?lang=" + config.lang : ""));
    }, function () {
      busy = false;
      $("pay-error").textContent = text.shop_order_failed;
      show($("pay-error"), true);
      updatePay();
    });
  });

  // --- the buyer: sign-in, orders, spending ---------------------------------------------------
  var lastOrder = null;
  function accountError(message) {
    $("account-error").textContent = message || "";
    show($("account-error"), !!message);
  }
  function orderItem(o) {
    var item = document.createElement("li");
    var link = document.createElement("a");
    link.href = "/stars/orders/" + encodeURIComponent(o.id);
    link.textContent = o.product === "premium"
      ? fill(text.shop_premium_for, { months: o.quantity, recipient: o.recipient })
      : fill(text.shop_order_for, { quantity: o.quantity, recipient: o.recipient });
    var amount = document.createElement("span");
    amount.className = "amount";
    amount.textContent = o.total + " " + (text["asset_" + o.asset] || o.asset);
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = new Date(o.created_at).toLocaleString(config.lang);
    var state = document.createElement("span");
    state.className = "state";
    state.dataset.status = o.status;
    state.textContent = text["order_" + o.status] || o.status;
    item.append(link, amount, meta, state);
    return item;
  }
  function loadOrders(more) {
    var path = "/me/orders?limit=10" + (more && lastOrder ? "&starting_after=" + encodeURIComponent(lastOrder) : "");
    return api("GET", path).then(function (result) {
      if (result.status === 401) { signedOut(); return; }
      if (!result.ok) { accountError(errorText(result, text.shop_sign_in_failed)); return; }
      var list = $("orders");
      if (!more) { list.textContent = ""; }
      result.body.data.forEach(function (o) { list.appendChild(orderItem(o)); });
      if (!more && !result.body.data.length) {
        var empty = document.createElement("li");
        empty.className = "meta";
        empty.textContent = text.shop_no_orders;
        list.appendChild(empty);
      }
      lastOrder = result.body.data.length ? result.body.data[result.body.data.length - 1].id : lastOrder;
      show($("orders-more"), result.body.has_more);
      var spent = Object.keys(result.body.spent).map(function (code) {
        return result.body.spent[code] + " " + (text["asset_" + code] || code);
      });
      $("spent").textContent = spent.join(" · ");
      show($("spent-line"), spent.length > 0);
    });
  }
  function signedIn(session) {
    $("buyer-name").textContent = fill(text.shop_signed_in, { name: session.name || session.buyer });
    show($("signed-out"), false);
    show($("signed-in"), true);
    accountError("");
    return loadOrders(false);
  }
  function signedOut() {
    token = null;
    show($("signed-in"), false);
    show($("signed-out"), true);
  }
  $("orders-more").addEventListener("click", function () { loadOrders(true); });

  var ui = null;
  $("sign-out").addEventListener("click", function () {
    api("POST", "/auth/logout").then(function () {
      signedOut();
      if (ui && ui.connected) { ui.disconnect(); }
      preparePayload();
    });
  });

  // Inside Telegram: initData, checked by the server, is the sign-in.
  function telegramSignIn() {
    if (!tg || !tg.initData) {
      signedOut();
      accountError(text.outside_telegram);
      return;
    }
    api("POST", "/auth/telegram", { init_data: tg.initData }).then(function (result) {
      if (!result.ok) { signedOut(); accountError(errorText(result, text.session_failed)); return; }
      token = result.body.token;
      signedIn(result.body);
    });
  }

  // On the web: TON Connect with a ton_proof of a payload from the server.
  function preparePayload() {
    if (!ui) { return; }
    ui.setConnectRequestParameters({ state: "loading" });
    api("GET", "/auth/ton-proof/payload").then(function (result) {
      if (result.ok) { ui.setConnectRequestParameters({ state: "ready", value: { tonProof: result.body.payload } }); }
      else { ui.setConnectRequestParameters(null); }
    });
  }
  function startWallets() {
    var walletConfig = $("wallet-config");
    if (!walletConfig || !window.TON_CONNECT_UI) { return; }
    ui = new window.TON_CONNECT_UI.TonConnectUI(JSON.parse(walletConfig.textContent));
    preparePayload();
    ui.onStatusChange(function (connected) {
      if (!connected) { return; }
      var item = connected.connectItems && connected.connectItems.tonProof;
      if (!item || !item.proof) {
        // Restored from an earlier visit: no fresh proof, so it proves nothing now.
        if ($("signed-in").hidden) { ui.disconnect(); preparePayload(); }
        return;
      }
      api("POST", "/auth/ton-proof", {
        address: connected.account.address, network: connected.account.chain,
        proof: item.proof, state_init: connected.account.walletStateInit
      }).then(function (result) {
        if (!result.ok) {
          accountError(errorText(result, text.shop_sign_in_failed));
          ui.disconnect();
          preparePayload();
          return;
        }
        signedIn(result.body);
      });
    });
  }

  // --- start ------------------------------------------------------------------------------
  markPresets();
  refreshPrices();
  if (config.telegram) {
    telegramSignIn();
  } else {
    api("GET", "/me").then(function (result) {
      if (result.ok) { signedIn(result.body); } else { signedOut(); }
    });
    startWallets();
  }
  var given = new URLSearchParams(window.location.search).get("to");
  if (given) { input.value = given; lookup(); }
})();
