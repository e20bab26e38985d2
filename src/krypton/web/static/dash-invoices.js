// Invoices: the list with a status filter and an order-id search, paged with starting_after;
// the create form, which shows the new invoice's checkout link.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  var last = null, query = "";
  function pill(status) { return el("span", { class: "pill " + status }, status); }
  function nowrap(node) { node.style.whiteSpace = "nowrap"; return node; } // ids scroll, not break
  function row(inv) {
    return el("tr", { dataset: { id: inv.id } },
      el("td", null, el("a", { href: "/dashboard/invoices/" + encodeURIComponent(inv.id) }, nowrap(el("code", null, inv.id)))),
      el("td", null, pill(inv.status), inv.exception ? " " + inv.exception : null),
      el("td", { class: "num" }, inv.amount + " " + inv.currency),
      el("td", null, inv.asset ? inv.amount_paid + " / " + inv.amount_due + " " + inv.asset : ""),
      el("td", null, inv.order_id || ""),
      el("td", null, k.when(inv.created_at)));
  }
  function load(more) {
    var params = new URLSearchParams(query);
    params.set("limit", "20");
    if (more && last) { params.set("starting_after", last); }
    k.api("GET", "/invoices?" + params.toString()).then(function (list) {
      var rows = document.getElementById("rows");
      if (!more) { k.fill(rows, []); }
      list.data.forEach(function (inv) { rows.appendChild(row(inv)); });
      rows.querySelectorAll("td.num").forEach(nowrap);
      last = list.data.length ? list.data[list.data.length - 1].id : last;
      document.getElementById("more").hidden = !list.has_more;
      document.getElementById("empty").hidden = rows.children.length > 0;
      k.showError(null);
    }).catch(k.showError);
  }
  document.getElementById("filters").addEventListener("submit", function (event) {
    event.preventDefault();
    var params = new URLSearchParams();
    var status = document.getElementById("status").value;
    var order = document.getElementById("order").value.trim();
    if (status) { params.set("status", status); }
    if (order) { params.set("order_id", order); }
    query = params.toString(); last = null;
    load(false);
  });
  document.getElementById("more").addEventListener("click", function () { load(true); });
  var form = document.getElementById("create");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { amount: form.amount.value.trim(), currency: form.currency.value };
      var methods = Array.prototype.filter.call(form.querySelectorAll("input[name=methods]"), function (box) {
        return box.checked;
      }).map(function (box) { return box.value; });
      if (methods.length) { body.methods = methods; }
      if (form.order_id.value.trim()) { body.order_id = form.order_id.value.trim(); }
      if (form.description.value.trim()) { body.description = form.description.value.trim(); }
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      k.api("POST", "/invoices", body).then(function (inv) {
        var link = document.getElementById("created-link");
        link.textContent = inv.id;
        link.href = "/dashboard/invoices/" + encodeURIComponent(inv.id);
        var pay = document.getElementById("checkout-link");
        pay.textContent = location.origin + "/pay/" + inv.id;
        pay.href = "/pay/" + encodeURIComponent(inv.id);
        pay.style.overflowWrap = "anywhere";
        link.style.overflowWrap = "anywhere";
        document.getElementById("created").hidden = false;
        form.reset();
        k.showError(null);
        last = null; load(false);
      }).catch(k.showError).finally(function () { button.disabled = false; });
    });
  }
  load(false);
})();
