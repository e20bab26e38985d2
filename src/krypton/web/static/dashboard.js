// What every dashboard page shares: calling the REST API with the session cookie and the
// CSRF header (refreshing the session once when it expired), building DOM from data (always
// as text, never as HTML), and showing errors. Pages add their own small script.
(function () {
  "use strict";
  function cookie(name) {
    var found = document.cookie.split("; ").find(function (c) { return c.indexOf(name + "=") === 0; });
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }
  var refreshing = null;
  function refresh() {
    refreshing = refreshing || fetch("/api/v1/session/refresh", {
      method: "POST", headers: { "X-CSRF-Token": cookie("krypton_csrf") }
    }).then(function (r) { refreshing = null; return r.ok; });
    return refreshing;
  }
  // api("GET", "/invoices?limit=20") -> the parsed body; rejects with the API's error.
  function api(method, path, body, retried) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") { headers["X-CSRF-Token"] = cookie("krypton_csrf"); }
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch("/api/v1" + path, { method: method, headers: headers, cache: "no-store",
                                     body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (response) {
        if (response.status === 401 && !retried) {
          return refresh().then(function (ok) {
            if (ok) { return api(method, path, body, true); }
            window.location.assign("/dashboard/sign-in?next=" + encodeURIComponent(location.pathname));
            return new Promise(function () {});
          });
        }
        if (response.status === 204) { return null; }
        return response.json().then(function (data) {
          if (!response.ok) { throw (data && data.error) || { message: "HTTP " + response.status }; }
          return data;
        });
      });
  }
  // el("td", {class: "num"}, "1.5", child, ...) -> an element; strings become text nodes.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "dataset") { Object.assign(node.dataset, attrs[key]); }
      else if (key.indexOf("on") === 0) { node.addEventListener(key.slice(2), attrs[key]); }
      else if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false) {
        node.setAttribute(key, attrs[key] === true ? "" : attrs[key]);
      }
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) { continue; }
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }
  function fill(target, children) {
    var node = typeof target === "string" ? document.getElementById(target) : target;
    node.replaceChildren.apply(node, children);
    return node;
  }
  function showError(error) {
    var box = document.getElementById("error");
    if (!box) { return; }
    box.textContent = error ? (error.message || String(error)) : "";
    box.hidden = !error;
  }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
  var signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", function () {
      api("DELETE", "/session").finally(function () { window.location.assign("/dashboard/sign-in"); });
    });
  }
  window.krypton = { api: api, el: el, fill: fill, showError: showError, when: when, cookie: cookie,
                     merchant: (document.getElementById("page") || { dataset: {} }).dataset.merchant };
})();
