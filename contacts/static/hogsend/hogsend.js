/*
 * Hogsend browser snippet: send events from your pages with a publishable key (pk_...).
 *
 *   <script src="https://HOGSEND/static/hogsend/hogsend.js" data-key="pk_..."></script>
 *   <script>
 *     hogsend.track("pricing.viewed", { plan: "pro" });
 *     hogsend.identify("user_123");   // after login: later events carry your user id
 *   </script>
 *
 * Until identify() a visitor is an anonymous id ("anon_...") kept in localStorage; identify()
 * sends `user.identified` with that anonymousId, so both ids can be joined. The API host is the
 * script's own unless data-host says otherwise. track() and identify() return promises of the
 * server's answer; a refusal rejects with the server's message.
 */
(function () {
  "use strict";
  var ANON = "hogsend:anonymous_id";
  var USER = "hogsend:user_id";
  var script = document.currentScript;
  var config = {
    key: script && script.getAttribute("data-key"),
    host: (script && (script.getAttribute("data-host") || new URL(script.src).origin)) || "",
  };
  var memory = {};

  function store(name, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(name);
      if (value === null) window.localStorage.removeItem(name);
      else window.localStorage.setItem(name, value);
    } catch (blocked) {
      // Storage can be off (private modes, policies): keep the ids for this page's life.
      if (value === undefined) return memory[name] || null;
      memory[name] = value;
    }
    return value;
  }

  function uuid() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
  }

  function anonymousId() {
    return store(ANON) || store(ANON, "anon_" + uuid().replace(/-/g, ""));
  }

  function distinctId() {
    return store(USER) || anonymousId();
  }

  function send(body, attempt) {
    if (!config.key) return Promise.reject(new Error("hogsend: no publishable key; set data-key or call hogsend.init"));
    return fetch(config.host.replace(/\/+$/, "") + "/v1/events", {
      method: "POST",
      mode: "cors",
      keepalive: true,
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + config.key },
      body: JSON.stringify(body),
    }).then(
      function (response) {
        var retryAfter = Number(response.headers.get("Retry-After"));
        if ((response.status === 429 || response.status === 503) && attempt < 2 && retryAfter <= 10) {
          return new Promise(function (resolve) {
            setTimeout(resolve, (retryAfter || 1) * 1000);
          }).then(function () {
            return send(body, attempt + 1); // the same idempotency key: never stored twice
          });
        }
        return response.json().then(function (answer) {
          if (!response.ok) throw new Error("hogsend: " + response.status + " " + answer.detail);
          return answer;
        });
      },
      function () {
        throw new Error(
          "hogsend: the request was refused or could not be sent; is " + location.origin +
            " among the publishable key's allowed origins?"
        );
      }
    );
  }

  function track(name, properties) {
    return send(
      { name: name, userId: distinctId(), eventProperties: properties || {}, idempotencyKey: "web_" + uuid() },
      0
    );
  }

  function identify(userId) {
    if (!userId) return Promise.reject(new Error("hogsend: identify needs your user id"));
    store(USER, String(userId));
    return track("user.identified", { anonymousId: anonymousId() });
  }

  window.hogsend = {
    init: function (options) {
      if (options.key) config.key = options.key;
      if (options.host) config.host = options.host;
    },
    track: track,
    identify: identify,
    reset: function () {
      store(USER, null);
      store(ANON, null);
    },
    anonymousId: anonymousId,
    userId: function () {
      return store(USER);
    },
  };
})();
