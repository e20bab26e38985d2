// The payer's refund page: submit the address without a reload, fill it from a TON Connect
// wallet where one is offered, and follow the refund until it is sent. Without this script
// the form posts as a plain form and the page shows the same.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var config = JSON.parse($("config").textContent);
  var stateLine = $("refund-state");

  function show(shown) {
    var box = $("refund-status");
    box.hidden = shown.state === "claim";
    box.dataset.state = shown.state;
    box.className = "status" + ({ succeeded: " tone-good", failed: " tone-bad", pending: " tone-warn" }[shown.state] || "");
    var template = stateLine.dataset[shown.state] || "";
    stateLine.textContent = template.replace("{address}", shown.destination || "");
    var form = $("refund-form");
    if (form && shown.state !== "claim") { form.remove(); }
    if (shown.state === "pending") { setTimeout(poll, config.poll_seconds * 1000); }
  }

  function poll() {
    fetch(config.status_url, { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(show, function () { setTimeout(poll, config.poll_seconds * 4000); });
  }

  var form = $("refund-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = $("refund-address"), error = $("refund-error"), button = $("refund-submit");
      button.disabled = true;
      fetch(config.claim_url, { method: "POST", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify({ address: input.value }) })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (answer) {
          button.disabled = false;
          if (answer.ok) { input.removeAttribute("aria-invalid"); error.hidden = true; show(answer.body); return; }
          input.setAttribute("aria-invalid", "true");
          error.textContent = (answer.body.error && answer.body.error.message) || "Error";
          error.hidden = false;
          input.focus();
        }, function () { button.disabled = false; });
    });
  }

  var walletConfig = $("wallet-config"), connect = $("refund-connect");
  if (walletConfig && connect && window.TON_CONNECT_UI) {
    var ui = new window.TON_CONNECT_UI.TonConnectUI(JSON.parse(walletConfig.textContent));
    // The connected wallet's own address: the payer still presses the button to submit it.
    var fill = function (wallet) { if (wallet && wallet.account) { $("refund-address").value = wallet.account.address; } };
    ui.onStatusChange(fill);
    connect.addEventListener("click", function () {
      if (ui.connected) { fill(ui.wallet); } else { ui.openModal(); }
    });
  }

  if (config.state === "pending") { setTimeout(poll, config.poll_seconds * 1000); }
})();
