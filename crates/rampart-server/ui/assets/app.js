// Rampart's pages: progressive enhancements only. Every form works without this file, except
// what needs WebAuthn: passkey sign-in (data-passkey-login), the passkey second step
// (data-passkey-step-up) and adding a passkey (data-passkey-register), through the JSON API.
// Also copy buttons (data-copy="<id of an input>"), downloads (data-download) and print.
(function () {
  "use strict";

  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }
  function attestation(c) {
    return {
      id: c.id, rawId: toB64url(c.rawId), type: c.type,
      response: {
        attestationObject: toB64url(c.response.attestationObject),
        clientDataJSON: toB64url(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : []
      },
      extensions: c.getClientExtensionResults()
    };
  }
  function assertion(c) {
    return {
      id: c.id, rawId: toB64url(c.rawId), type: c.type,
      response: {
        authenticatorData: toB64url(c.response.authenticatorData),
        clientDataJSON: toB64url(c.response.clientDataJSON),
        signature: toB64url(c.response.signature),
        userHandle: c.response.userHandle ? toB64url(c.response.userHandle) : null
      },
      extensions: c.getClientExtensionResults()
    };
  }
  function post(url, body, csrf) {
    var headers = { "content-type": "application/json" };
    if (csrf) headers["x-csrf-token"] = csrf;
    return fetch(url, {
      method: "POST", headers: headers, credentials: "same-origin", body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = text ? JSON.parse(text) : {};
        if (!res.ok) throw new Error(data.detail || data.title || res.statusText);
        return data;
      });
    });
  }
  // Runs a passkey ceremony from `root`: shows its failure in root's .passkey-status.
  function ceremony(root, run) {
    var status = root.querySelector(".passkey-status");
    var button = root.querySelector("button");
    function fail(e) {
      if (status) {
        status.textContent = (e && e.name === "NotAllowedError") ? document.documentElement.dataset.passkeyFailed : (e.message || String(e));
        status.hidden = false;
      }
      if (button) button.disabled = false;
    }
    return function (ev) {
      if (ev) ev.preventDefault();
      if (status) status.hidden = true;
      if (button) button.disabled = true;
      try { run().catch(fail); } catch (e) { fail(e); }
    };
  }
  function wirePasskeys(root) {
    if (!window.PublicKeyCredential || !navigator.credentials) return;
    root.querySelectorAll(".needs-js").forEach(function (el) { el.hidden = true; });
    root.querySelectorAll("[data-passkey-login]").forEach(function (el) {
      el.hidden = false;
      el.querySelector("button").addEventListener("click", ceremony(el, function () {
        return post("/v1/auth/passkey/start").then(function (start) {
          return navigator.credentials.get(requestOptions(start.options)).then(function (cred) {
            return post("/v1/auth/passkey/finish?session=cookie", { challenge_id: start.challenge_id, credential: assertion(cred) });
          });
        }).then(function () { window.location.assign(el.dataset.next); });
      }));
    });
    root.querySelectorAll("[data-passkey-step-up]").forEach(function (el) {
      el.hidden = false;
      el.querySelector("button").addEventListener("click", ceremony(el, function () {
        var token = el.dataset.mfaToken;
        return post("/v1/auth/login/webauthn/start", { mfa_token: token }).then(function (start) {
          return navigator.credentials.get(requestOptions(start.options)).then(function (cred) {
            return post("/v1/auth/login/webauthn/finish", { mfa_token: token, challenge_id: start.challenge_id, credential: assertion(cred) });
          });
        }).then(function () { window.location.assign(el.dataset.next); });
      }));
    });
    root.querySelectorAll("form[data-passkey-register]").forEach(function (form) {
      form.hidden = false;
      form.addEventListener("submit", ceremony(form, function () {
        var csrf = form.elements.csrf.value;
        var code = form.elements.code.value.trim();
        var reauth = { password: form.elements.password.value, code: code || null };
        return post("/v1/me/mfa/webauthn/register/start", reauth, csrf).then(function (start) {
          return navigator.credentials.create(creationOptions(start.options)).then(function (cred) {
            return post("/v1/me/mfa/webauthn/register/finish",
              { challenge_id: start.challenge_id, credential: attestation(cred), name: form.elements.name.value }, csrf);
          });
        }).then(function () { window.location.assign(form.dataset.next); });
      }));
    });
  }
  function valueOf(id) {
    var el = document.getElementById(id);
    return el ? (el.value !== undefined ? el.value : el.textContent) : "";
  }
  function wire(root) {
    root.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      if (!navigator.clipboard) return;
      b.hidden = false;
      b.addEventListener("click", function () {
        navigator.clipboard.writeText(valueOf(b.dataset.copy)).then(function () {
          var label = b.textContent;
          b.textContent = document.documentElement.dataset.copied || "Copied";
          setTimeout(function () { b.textContent = label; }, 1500);
        }, function () {});
      });
    });
    root.querySelectorAll("button.download[data-download]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        var blob = new Blob([valueOf(b.dataset.download) + "\n"], { type: "text/plain" });
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = b.dataset.filename || "download.txt";
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
      });
    });
    root.querySelectorAll("button.print").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { window.print(); });
    });
  }
  // On a narrow screen the tabs scroll sideways: the current one is brought into view (at load,
  // and when the window narrows, e.g. a phone turned).
  function showCurrentTab() {
    var tabs = document.querySelector(".tabs"), cur = tabs && tabs.querySelector('[aria-current="page"]');
    if (!cur || tabs.scrollWidth <= tabs.clientWidth) return;
    tabs.scrollLeft = Math.max(0, cur.offsetLeft - (tabs.clientWidth - cur.offsetWidth) / 2);
  }
  function start() {
    wire(document); wirePasskeys(document); showCurrentTab();
    window.addEventListener("resize", showCurrentTab);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
