// One invoice: amounts, options, payments with their confirmations, and the timeline of its
// events (its own, its payments' and its settlement's). Refreshed while it is still moving.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  var id = document.getElementById("invoice").dataset.invoice;
  var base = "/invoices/" + encodeURIComponent(id);
  var POLL_MS = 3000;
  function card(label, value) {
    return el("div", { class: "card stat" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  }
  function nowrap(nodes) { nodes.forEach(function (n) { n.style.whiteSpace = "nowrap"; }); }
  function wrap(node) { node.style.overflowWrap = "anywhere"; return node; }
  function pill(status) { return el("span", { class: "pill " + status }, status); }
  function pair(label, value) { return el("tr", null, el("th", { scope: "row" }, label), el("td", null, value)); }
  var EVENT_WORDS = {
    "invoice.created": "Invoice created", "invoice.confirming": "Payment seen, confirming",
    "invoice.paid": "Invoice paid", "invoice.expired": "Invoice expired", "invoice.cancelled": "Invoice cancelled",
    "invoice.underpaid": "Underpaid: more is due", "payment.detected": "Payment detected",
    "payment.confirming": "Payment confirming", "payment.confirmed": "Payment confirmed",
    "payment.failed": "Payment failed", "settlement.created": "Settled"
  };
  function eventLine(e) {
    var d = e.data || {}, extra = [];
    if (d.amount && d.asset) { extra.push(d.amount + " " + d.asset); }
    if (d.confirmations !== undefined && d.required_confirmations !== undefined) {
      extra.push(d.confirmations + "/" + d.required_confirmations + " confirmations");
    }
    if (d.net && d.asset) { extra.push("net " + d.net + " " + d.asset); }
    return el("li", { dataset: { type: e.type } },
      el("strong", null, EVENT_WORDS[e.type] || e.type), " ",
      el("span", { class: "muted" }, k.when(e.created_at)),
      extra.length ? el("div", { class: "muted" }, extra.join(" · ")) : null,
      el("div", null, el("code", null, e.subject_id)));
  }
  function show(inv) {
    document.title = inv.id + " · Krypton";
    k.fill("summary", [
      card("Status", pill(inv.status)),
      card("Price", inv.amount + " " + inv.currency),
      card("Paid", inv.asset ? inv.amount_paid + " / " + inv.amount_due + " " + inv.asset : "nothing yet"),
      card("Fee", inv.platform_fee_percentage + " %")]);
    k.fill("details", [
      pair("Invoice", el("code", null, inv.id)),
      pair("Checkout", wrap(el("a", { href: "/pay/" + encodeURIComponent(inv.id) }, location.origin + "/pay/" + inv.id))),
      pair("Order id", inv.order_id || "—"), pair("Description", inv.description || "—"),
      pair("Exception", inv.exception || "—"), pair("Created", k.when(inv.created_at)),
      pair("Expires", k.when(inv.expires_at)), pair("Paid at", inv.paid_at ? k.when(inv.paid_at) : "—"),
      pair("Confirmations", inv.confirmations === null ? "chain default" : String(inv.confirmations)),
      pair("Rates", (inv.rate_source || "—") + (inv.rate_at ? " at " + k.when(inv.rate_at) : ""))]);
    k.fill("options", inv.payment_options.map(function (o) {
      return el("tr", null, el("td", null, o.method), el("td", { class: "num" }, o.amount + " " + o.asset),
        el("td", null, el("code", null, o.address || "")), el("td", null, el("code", null, o.memo || "")));
    }));
    var cancel = document.getElementById("cancel");
    if (cancel) { cancel.hidden = inv.status !== "pending"; }
  }
  function showPayments(list) {
    k.fill("payments", list.data.map(function (p) {
      return el("tr", null, el("td", null, el("code", null, p.id)), el("td", null, pill(p.status)),
        el("td", { class: "num" }, p.amount + " " + p.asset),
        el("td", { class: "num" }, p.confirmations + " / " + p.required_confirmations),
        el("td", null, el("code", null, p.chain + " " + p.tx_id)), el("td", null, k.when(p.detected_at)));
    }));
    nowrap(document.querySelectorAll("#payments td.num, #payments code, #options td.num"));
    document.getElementById("no-payments").hidden = list.data.length > 0;
  }
  function load() {
    return Promise.all([k.api("GET", base), k.api("GET", base + "/payments"), k.api("GET", base + "/events")])
      .then(function (got) {
        show(got[0]); showPayments(got[1]);
        k.fill("timeline", got[2].data.map(eventLine));
        k.showError(null);
        var settled = got[0].status === "paid" && got[2].data.some(function (e) { return e.type === "settlement.created"; });
        var moving = ["pending", "confirming"].indexOf(got[0].status) >= 0 || (got[0].status === "paid" && !settled);
        if (moving) { setTimeout(load, POLL_MS); }
      }).catch(k.showError);
  }
  var cancel = document.getElementById("cancel");
  if (cancel) {
    cancel.addEventListener("click", function () {
      if (!window.confirm("Cancel this invoice? A payer can no longer pay it.")) { return; }
      k.api("POST", base + "/cancel").then(load).catch(k.showError);
    });
  }
  load();
})();
