/* Boomerang recommendations widget: one script tag renders each recommendation block on a shop page and tracks it.

   <script async src="https://boomerang.example/v1/recommendations.js" data-write-key="bk_w_..."></script>
   <div data-boomerang-block="product_page" data-product="SKU-1"></div>

   Placeholders may add data-category, data-cart="sku1,sku2", data-size, data-user-id + data-user-hash (signed by
   the shop's server; or on the script tag) and data-template: a global function `(block, el) => ...` that renders
   instead (window.boomerangRender: for every block; mark each card data-boomerang-sku for its clicks). Server data
   reaches the page only as text or http(s) addresses. Impressions and clicks are Segment events (`Product List
   Viewed`, `Product Clicked`, list_id = the block). A failed block leaves its placeholder empty; nothing throws. */

(() => {
  "use strict";
  const VERSION = "1.0.0";
  const LIBRARY = { name: "boomerang-widget", version: VERSION };
  const RECENT_KEY = "boomerang_recent", RECENT_MAX = 20, OWN_ID_KEY = "boomerang_anonymous_id";
  const script = document.currentScript || document.querySelector("script[src*='recommendations.js'][data-write-key]");
  if (!script || !script.src) return;
  const API = new URL(".", script.src); // ".../v1/": Boomerang may live under a path of its own
  const WRITE_KEY = script.dataset.writeKey || "";
  const blocks = new WeakMap(); // placeholder -> the block it shows now (for its clicks)
  const observers = new WeakMap(); // placeholder -> its impression's observer, until it fires or the block changes
  const warn = (...args) => console.warn("[boomerang]", ...args);

  // -- storage that may be refused (private windows, blocked storage): never fatal ----------------------------
  const storage = {
    get(key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } },
    set(key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* not kept: fine */ } },
  };
  const unquote = (value) => {
    if (!value) return null;
    try { const parsed = JSON.parse(value); return typeof parsed === "string" ? parsed : String(value); }
    catch (e) { return String(value); } // analytics.js stores it JSON-quoted; older versions did not
  };
  const cookie = (name) => {
    const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    if (!found) return null;
    try { return decodeURIComponent(found.slice(name.length + 1)); } catch (e) { return null; }
  };
  const uuid = () => {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16)); // http pages have no randomUUID
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  /** analytics.js's anonymous id when the shop runs it (one visitor, one id), else our own, kept on the device. */
  function anonymousId() {
    const theirs = unquote(storage.get("ajs_anonymous_id")) || unquote(cookie("ajs_anonymous_id"));
    if (theirs) return theirs;
    let own = storage.get(OWN_ID_KEY);
    if (!own) { own = uuid(); storage.set(OWN_ID_KEY, own); }
    return own;
  }

  function recent() {
    try {
      const list = JSON.parse(storage.get(RECENT_KEY) || "[]");
      return Array.isArray(list) ? list.map(String) : [];
    } catch (e) { return []; }
  }
  function remember(sku) {
    storage.set(RECENT_KEY, JSON.stringify([sku, ...recent().filter((s) => s !== sku)].slice(0, RECENT_MAX)));
  }

  const safeUrl = (value) => {
    if (typeof value !== "string" || !value) return null;
    try { const url = new URL(value); return url.protocol === "http:" || url.protocol === "https:" ? url.href : null; }
    catch (e) { return null; }
  };
  function price(value, currency) {
    if (typeof value !== "number" || !isFinite(value)) return "";
    const locale = document.documentElement.lang || navigator.language || undefined;
    try { if (currency) return new Intl.NumberFormat(locale, { style: "currency", currency }).format(value); }
    catch (e) { /* not an ISO currency code: shown plainly below */ }
    return currency ? `${value.toFixed(2)} ${currency}` : value.toFixed(2);
  }

  // -- who is asking ------------------------------------------------------------------------------------------
  function who(el) {
    const userId = el.dataset.userId || script.dataset.userId || "";
    const userHash = el.dataset.userHash || script.dataset.userHash || "";
    return { anonymousId: anonymousId(), userId, userHash };
  }

  // -- tracking: Segment's track call with the write key in the body (a simple request: no preflight) -------
  function track(el, event, properties) {
    const visitor = who(el);
    const message = {
      writeKey: WRITE_KEY, type: "track", event, properties, anonymousId: visitor.anonymousId,
      messageId: `bw-${uuid()}`, timestamp: new Date().toISOString(),
      context: {
        library: LIBRARY,
        page: { url: location.href, path: location.pathname, referrer: document.referrer, title: document.title },
      },
    };
    if (visitor.userId) message.userId = visitor.userId;
    if (visitor.userId && visitor.userHash) message.integrations = { Boomerang: { user_hash: visitor.userHash } };
    try {
      fetch(new URL("track", API), {
        method: "POST", body: JSON.stringify(message), keepalive: true, credentials: "omit",
        headers: { "Content-Type": "text/plain" }, // the body is JSON all the same; the navigation may go on
      }).catch((e) => warn(`could not send ${event}:`, e));
    } catch (e) { warn(`could not send ${event}:`, e); }
  }

  const defined = (obj) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== null && v !== undefined));
  const product = (item) => defined({ // no nulls: Segment's product fields are absent when unknown
    product_id: item.sku, sku: item.sku, name: item.name, price: item.price, position: item.position,
  });

  function watchImpression(el, block) {
    const send = () => track(el, "Product List Viewed", {
      list_id: block.block, variant: block.variant, products: block.items.map(product),
    });
    if (observers.has(el)) observers.get(el).disconnect(); // rendered again: the old block's was never seen
    if (!("IntersectionObserver" in window)) return send();
    const observer = new IntersectionObserver((entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      observer.disconnect(); // once per render
      send();
    }, { threshold: 0.3 });
    observers.set(el, observer);
    observer.observe(el);
  }

  function onClick(event) {
    if (event.type === "auxclick" && event.button !== 1) return; // a middle click opens the link too
    const el = event.currentTarget, block = blocks.get(el);
    const card = event.target.closest && event.target.closest("[data-boomerang-sku]");
    if (!block || !card || !el.contains(card)) return;
    const item = block.items.find((i) => i.sku === card.dataset.boomerangSku);
    if (!item) return;
    const properties = defined({
      list_id: block.block, variant: block.variant, ...product(item), url: safeUrl(item.url),
    });
    track(el, "Product Clicked", properties);
  }

  // -- rendering: DOM nodes and textContent only ---------------------------------------------------------------
  const CSS = `
  :where(.boomerang-block){margin:1.5em 0}
  :where(.boomerang-title){font-size:1.25em;margin:0 0 .6em}
  :where(.boomerang-items){list-style:none;margin:0;padding:0;display:grid;gap:1em;
    grid-template-columns:repeat(auto-fill,minmax(150px,1fr))}
  :where(.boomerang-item){border:1px solid #e4e4e7;border-radius:8px;overflow:hidden;background:#fff}
  :where(.boomerang-link){display:flex;flex-direction:column;gap:.3em;padding:.6em;height:100%;box-sizing:border-box;
    color:inherit;text-decoration:none}
  :where(.boomerang-link:hover .boomerang-name){text-decoration:underline}
  :where(.boomerang-link:focus-visible){outline:2px solid currentColor;outline-offset:2px}
  :where(.boomerang-image){width:100%;aspect-ratio:1;object-fit:contain;background:#f4f4f5}
  :where(.boomerang-price){font-weight:600}`;
  let styled = false;
  function style() {
    if (styled || script.dataset.styles === "none") return;
    styled = true;
    try { // a constructed sheet: no inline <style> for the shop's CSP to refuse
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      document.adoptedStyleSheets = [sheet, ...document.adoptedStyleSheets]; // first: the shop's rules win
    } catch (e) { warn("default styles not applied:", e); }
  }

  const node = (tag, className, text) => {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text) n.textContent = text;
    return n;
  };

  function render(block, el) {
    style();
    const section = node("section", "boomerang-block");
    section.dataset.block = block.block;
    if (block.title) {
      const title = node("h2", "boomerang-title", block.title);
      title.id = `boomerang-${block.block}-${Math.random().toString(36).slice(2, 8)}`;
      section.setAttribute("aria-labelledby", title.id);
      section.append(title);
    }
    const list = node("ul", "boomerang-items");
    for (const item of block.items) {
      const li = node("li", "boomerang-item");
      li.dataset.boomerangSku = item.sku;
      const href = safeUrl(item.url);
      const card = node(href ? "a" : "div", "boomerang-link");
      if (href) card.href = href;
      const src = safeUrl(item.image_url);
      if (src) {
        const img = node("img", "boomerang-image");
        Object.assign(img, { src, alt: "", loading: "lazy", decoding: "async" }); // the name is the link's text
        card.append(img);
      }
      card.append(node("span", "boomerang-name", item.name || item.sku));
      const shown = price(item.price, item.currency);
      if (shown) card.append(node("span", "boomerang-price", shown));
      li.append(card);
      list.append(li);
    }
    section.append(list);
    el.replaceChildren(section);
  }

  // -- loading a placeholder ---------------------------------------------------------------------------------
  function request(el) {
    const url = new URL(`recommendations/${encodeURIComponent(el.dataset.boomerangBlock)}`, API);
    const visitor = who(el), q = url.searchParams, d = el.dataset;
    q.set("writeKey", WRITE_KEY); // in the query, not a header: a simple request, no preflight
    q.set("anonymous_id", visitor.anonymousId);
    if (visitor.userId && visitor.userHash) { q.set("user_id", visitor.userId); q.set("user_hash", visitor.userHash); }
    for (const name of ["product", "category", "cart", "size"]) if (d[name]) q.set(name, d[name]);
    const seen = recent();
    if (seen.length) q.set("recent", seen.join(","));
    return url;
  }

  async function load(el) {
    if (!el || !el.dataset || !el.dataset.boomerangBlock) return;
    el.dataset.boomerangState = "loading";
    el.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(request(el), { credentials: "omit", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
      const block = await response.json();
      if (!block || !Array.isArray(block.items)) throw new Error("not a block");
      blocks.set(el, block);
      if (!block.items.length) { el.replaceChildren(); el.dataset.boomerangState = "empty"; return; }
      const custom = (el.dataset.template && window[el.dataset.template]) || window.boomerangRender;
      if (typeof custom === "function") custom(block, el); else render(block, el);
      el.dataset.boomerangState = "ready";
      watchImpression(el, block);
    } catch (e) {
      el.replaceChildren();
      el.dataset.boomerangState = "error";
      warn(`block ${el.dataset.boomerangBlock} not shown:`, e);
    } finally {
      el.removeAttribute("aria-busy");
    }
  }

  const bound = new WeakSet();
  function watch(el) {
    if (bound.has(el)) return;
    bound.add(el);
    el.addEventListener("click", onClick);
    el.addEventListener("auxclick", onClick);
  }
  function mount(el) {
    if (el && el.dataset && el.dataset.product) remember(el.dataset.product); // a product page: viewed
    if (el && el.addEventListener) watch(el);
    return load(el);
  }
  function loadAll(root) {
    const found = Array.from((root || document).querySelectorAll("[data-boomerang-block]"));
    for (const el of found) if (el.dataset.product) remember(el.dataset.product); // before any block asks
    for (const el of found) { watch(el); load(el); }
  }

  // For placeholders added later (a single-page shop): boomerangWidget.load(el), or loadAll() again.
  window.boomerangWidget = { version: VERSION, load: mount, loadAll };
  if (!WRITE_KEY) return warn("the script tag needs data-write-key");
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => loadAll());
  else loadAll();
})();
