// The hosted checkout: method tabs, copy buttons, the countdown, and the invoice followed
// without a reload. Every word shown comes from the server (/pay/{id}/status), already in
// the payer's language; this script only puts it in place, always as text, never as HTML.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);
  var text = config.text;
  var $ = function (id) { return document.getElementById(id); };
  var redirected = false;

  // --- method tabs -------------------------------------------------------------------
  function select(method) {
    document.querySelectorAll(".tab").forEach(function (tab) {
      tab.setAttribute("aria-selected", tab.dataset.method === method ? "true" : "false");
    });
    document.querySelectorAll(".panel").forEach(function (panel) {
      panel.hidden = panel.dataset.method !== method;
    });
  }
  document.querySelectorAll(".tab").forEach(function (tab) {
    tab.addEventListener("click", function () { select(tab.dataset.method); });
  });

  // --- copy buttons ------------------------------------------------------------------
  function copy(button) {
    var panel = button.closest(".panel");
    var value = panel.querySelector('[data-field="' + button.dataset.copyField + '"]').textContent.trim();
    var done = function () {
      button.textContent = text.copied;
      button.classList.add("done");
      setTimeout(function () { button.textContent = text.copy; button.classList.remove("done"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, function () { fallbackCopy(value); done(); });
    } else {
      fallbackCopy(value);
      done();
    }
  }
  function fallbackCopy(value) {
    var area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the value stays selectable on the page */ }
    document.body.removeChild(area);
  }
  document.querySelectorAll(".copy").forEach(function (button) {
    button.addEventListener("click", function () { copy(button); });
  });

  // --- the state, as the server words it ------------------------------------------------
  function showState(shown, invoice) {
    var status = $("status");
    status.dataset.state = shown.state;
    status.className = "status tone-" + shown.tone;
    $("state-title").textContent = shown.title;
    $("state-detail").textContent = shown.detail;
    showProgress(shown.progress);
    $("pay").hidden = !shown.paying;
    if (shown.paying) { showOptions(invoice.payment_options); }
    if (shown.state === "paid") { goBack(invoice.redirect_url); }
  }
  function showProgress(progress) {
    var bar = $("progress-bar");
    $("progress").hidden = !progress;
    if (progress) {
      bar.dataset.seen = progress[0];
      bar.dataset.required = progress[1];
    }
    if (bar.dataset.required) {
      bar.style.width = Math.round(100 * Math.max(0.05, bar.dataset.seen / bar.dataset.required)) + "%";
    }
  }
  // After a partial payment only the asset already used stays, for what remains.
  function showOptions(options) {
    var open = {};
    options.forEach(function (o) { open[o.method] = o; });
    document.querySelectorAll(".panel").forEach(function (panel) {
      var o = open[panel.dataset.method];
      var tab = $("tab-" + panel.dataset.method);
      if (tab) { tab.hidden = !o; }
      if (!o) { panel.hidden = true; return; }
      var amount = panel.querySelector('[data-field="amount"]');
      if (amount && amount.textContent !== o.amount) {
        amount.textContent = o.amount;
        var qr = panel.querySelector('[data-field="qr"]');
        if (qr && o.qr_url) { qr.src = o.qr_url + "?v=" + encodeURIComponent(o.amount); }
        var link = panel.querySelector('[data-field="deep_link"]');
        if (link && o.deep_link) { link.href = o.deep_link; }
      }
    });
    var visible = Array.prototype.filter.call(document.querySelectorAll(".panel"),
      function (panel) { return !panel.hidden; });
    if (!visible.length && options.length) { select(options[0].method); }
  }
  function showLink(url) {
    if (!url || !/^https?:\/\//i.test(url)) { return false; }
    var link = $("redirect-link");
    link.href = url;
    link.textContent = text.back_to_shop;
    $("redirect").hidden = false;
    return true;
  }
  // Paid while the payer watched: back to the shop after a moment (the link stays for those
  // who would rather click). A page opened already paid only shows the link.
  function goBack(url) {
    if (redirected || !showLink(url)) { return; }
    redirected = true;
    $("state-detail").textContent = ($("state-detail").textContent + " " + text.redirecting).trim();
    setTimeout(function () { window.location.assign(url); }, 3000);
  }

  // --- following the invoice ------------------------------------------------------------
  var finished = false;
  function poll() {
    fetch(config.status_url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body) {
          showState(body.shown, body.invoice);
          finished = ["paid", "cancelled"].indexOf(body.shown.state) >= 0;
        }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { if (!finished) { setTimeout(poll, config.poll_seconds * 1000); } });
  }

  // --- the countdown: quiet until the last minutes -----------------------------------------
  var deadline = Date.parse(config.expires_at);
  function tick() {
    var left = Math.max(0, deadline - Date.now());
    var countdown = $("countdown");
    var state = $("status").dataset.state;
    if (left <= 0 || ["pending", "underpaid"].indexOf(state) < 0) { countdown.hidden = true; return; }
    var minutes = Math.floor(left / 60000);
    var seconds = Math.floor((left % 60000) / 1000);
    var clock = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    var hurry = left < config.hurry_minutes * 60000;
    countdown.hidden = false;
    countdown.classList.toggle("hurry", hurry);
    countdown.textContent = hurry ? text.hurry.replace("{minutes}", config.hurry_minutes) + " · " + clock
                                  : text.time_left + " " + clock;
  }

  // --- devnet: pay from a funded simulator wallet ---------------------------------------------
  document.querySelectorAll("[data-devnet]").forEach(function (button) {
    button.addEventListener("click", function () {
      var method = button.closest(".panel").dataset.method;
      button.disabled = true;
      // Stars go through the devnet's fake Telegram: a pre-checkout, then a payment update to
      // Krypton's own bot webhook; the chains through the devnet's funded wallets.
      var stars = method === "stars";
      fetch(stars ? config.stars_devnet_url : config.devnet_url, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(stars ? { invoice: config.invoice_id }
                                   : { method: method, variant: button.dataset.devnet })
      }).then(function () { button.disabled = false; });
    });
  });

  // --- TON Connect (when the wallet library is served) -----------------------------------------
  var walletConfig = $("wallet-config");
  if (walletConfig && window.TON_CONNECT_UI) {
    var wallet = JSON.parse(walletConfig.textContent);
    var ui = new window.TON_CONNECT_UI.TonConnectUI(wallet);
    var waiting = null;  // the method to pay once the wallet the payer is choosing connects
    // Asks Krypton for the transaction (for USDT: to the connected wallet's own jetton
    // wallet), then the wallet to send it.
    var pay = function (method, owner) {
      return fetch(config.status_url.replace("/status?", "/ton-connect?method=" + method + "&owner=" +
                                              encodeURIComponent(owner) + "&"))
        .then(function (response) { if (!response.ok) { throw new Error("refused"); } return response.json(); })
        .then(function (message) { return ui.sendTransaction(message); })
        .then(function () { $("state-detail").textContent = text.wallet_sent; },
              function () { $("state-detail").textContent = text.wallet_failed; });
    };
    ui.onStatusChange(function (connected) {
      if (connected && waiting) { var method = waiting; waiting = null; pay(method, connected.account.address); }
    });
    document.querySelectorAll("[data-wallet-pay]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (ui.connected && ui.account) { pay(button.dataset.walletPay, ui.account.address); return; }
        waiting = button.dataset.walletPay;
        ui.openModal();
      });
    });
  }

  showProgress(null);
  if ($("status").dataset.state === "paid") { showLink(config.redirect_url); }
  tick();
  setInterval(tick, 1000);
  if (["paid", "cancelled"].indexOf($("status").dataset.state) < 0) { setTimeout(poll, config.poll_seconds * 1000); }
})();
