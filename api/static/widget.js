/*! <qa-search>: answers quoted verbatim from your documents, with links to the exact source.
 * One dependency-free file; no build step. Docs: docs/widget.md
 *   <script src="https://qa.example.org/widget.js" defer></script>
 *   <qa-search endpoint="https://qa.example.org"></qa-search>
 * Every string from the server is inserted as text (textContent / text nodes), never as HTML.
 */
(() => {
  "use strict";
  if (!window.customElements || customElements.get("qa-search")) return;

  // The service that served this script: the default endpoint when none is given.
  const SCRIPT_ORIGIN = (() => {
    try {
      return new URL(document.currentScript.src).origin;
    } catch {
      return location.origin;
    }
  })();
  const DEBOUNCE_MS = 250; // skips most keystrokes of a typing burst, still feels live
  const MIN_CHARS = 3; // shorter input is not yet a question
  const TIMEOUT_MS = 15000; // the API answers in tens of ms; this only catches a hung server
  // Words too common to be worth highlighting in a quote.
  const STOP = new Set(
    ("a about all an and any are as at be been but by can could did do does for from had has have how i if in into " +
      "is it its many may me more most much my no not of on or our should so than that the their them then there " +
      "these they this those to under us was we were what when where which who whom whose why will with would you your")
      .split(" "),
  );
  const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

  /** A crude stem, so that "agency" matches "agencies" and "share" matches "sharing". */
  function stem(word) {
    let w = word.toLowerCase().replace(/['’]s$/, "");
    if (w.length > 4 && w.endsWith("ies")) w = w.slice(0, -3) + "y";
    else if (w.length > 4 && /(s|x|z|ch|sh)es$/.test(w)) w = w.slice(0, -2);
    else if (w.length > 3 && w.endsWith("s") && !w.endsWith("ss")) w = w.slice(0, -1);
    if (w.length > 5 && w.endsWith("ing")) w = w.slice(0, -3);
    else if (w.length > 4 && w.endsWith("ed")) w = w.slice(0, -2);
    return w.length > 3 && w.endsWith("e") ? w.slice(0, -1) : w;
  }

  /** Offsets [start, end) of the words of `text` that also occur in `question`. */
  function matchSpans(text, question) {
    const wanted = new Set();
    for (const [w] of question.matchAll(WORD)) {
      const lower = w.toLowerCase();
      if (!STOP.has(lower) && (w.length > 1 || /\d/.test(w))) wanted.add(stem(w));
    }
    const spans = [];
    for (const m of text.matchAll(WORD)) {
      if (!wanted.has(stem(m[0]))) continue;
      const last = spans[spans.length - 1];
      // Neighbouring matches ("Secure Communities") make one highlight.
      if (last && !text.slice(last[1], m.index).trim()) last[1] = m.index + m[0].length;
      else spans.push([m.index, m.index + m[0].length]);
    }
    return spans;
  }

  /** Text nodes and <mark> elements for `text` with `spans` highlighted. */
  function highlighted(text, spans) {
    const out = [];
    let at = 0;
    for (const [s, e] of spans) {
      if (s > at) out.push(document.createTextNode(text.slice(at, s)));
      out.push(h("mark", { part: "mark" }, text.slice(s, e)));
      at = e;
    }
    if (at < text.length) out.push(document.createTextNode(text.slice(at)));
    return out;
  }

  /** An element with string attributes and children (strings become text nodes). */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== false) node.setAttribute(k, v === true ? "" : String(v));
    }
    node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  /** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or null. */
  function retrySeconds(value) {
    if (!value) return null;
    const n = Number(value);
    const s = Number.isFinite(n) ? n : (Date.parse(value) - Date.now()) / 1000;
    return Number.isFinite(s) ? Math.max(1, Math.ceil(s)) : null;
  }

  const CSS = `
:host{display:block;position:relative;max-width:100%;font:var(--qa-font-size,1rem)/1.5 var(--qa-font,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);
--_accent:var(--qa-accent,#1f5fd1);--_bg:var(--qa-bg,#fff);--_fg:var(--qa-fg,#1a1d21);--_muted:var(--qa-muted,#5c6470);
--_border:var(--qa-border,#c5cad3);--_hover:var(--qa-hover,#eef3fc);--_mark:var(--qa-mark-bg,#ffe58a);--_markfg:var(--qa-mark-fg,#1a1d21);
--_error:var(--qa-error,#b3261e);--_radius:var(--qa-radius,10px);color:var(--_fg)}
@media (prefers-color-scheme:dark){:host{--_accent:var(--qa-accent,#8ab4ff);--_bg:var(--qa-bg,#17191d);--_fg:var(--qa-fg,#e8eaed);
--_muted:var(--qa-muted,#a4abb6);--_border:var(--qa-border,#4a505a);--_hover:var(--qa-hover,#232a36);--_mark:var(--qa-mark-bg,#7a5d00);
--_markfg:var(--qa-mark-fg,#fff6d6);--_error:var(--qa-error,#ffb4ab)}}
:host([hidden]),[hidden]{display:none!important}
*{box-sizing:border-box}
.box{display:flex;align-items:center;gap:.5em;padding:0 .5em 0 .75em;background:var(--_bg);border:1px solid var(--_border);border-radius:var(--_radius)}
.box:focus-within{border-color:var(--_accent);box-shadow:0 0 0 1px var(--_accent);box-shadow:0 0 0 3px color-mix(in srgb,var(--_accent) 35%,transparent)}
.icon{flex:none;width:.9em;height:.9em;border:2px solid var(--_muted);border-radius:50%;position:relative;margin-right:.15em}
.icon::after{content:"";position:absolute;width:2px;height:.4em;background:var(--_muted);right:-.2em;bottom:-.35em;transform:rotate(-45deg)}
input{flex:1;min-width:0;padding:.7em 0;border:0;background:none;color:inherit;font:inherit;font-size:max(16px,1em);outline:none}
input::placeholder{color:var(--_muted);opacity:1}
kbd{flex:none;font:inherit;font-size:.8em;color:var(--_muted);border:1px solid var(--_border);border-radius:4px;padding:0 .4em}
button{font:inherit;color:inherit;background:none;border:1px solid var(--_border);border-radius:6px;padding:.2em .7em;cursor:pointer}
button:focus-visible,a:focus-visible{outline:2px solid var(--_accent);outline-offset:2px}
button:disabled{opacity:.6;cursor:default}
.clear{flex:none;border:0;font-size:1.25em;line-height:1;padding:.3em .45em;color:var(--_muted)}
.spin{flex:none;width:1em;height:1em;border:2px solid var(--_border);border-top-color:var(--_accent);border-radius:50%;animation:r .7s linear infinite}
@keyframes r{to{transform:rotate(1turn)}}
@media (prefers-reduced-motion:reduce){.spin{animation-duration:3s}}
.status{margin:.4em .25em 0;min-height:1.5em;font-size:.875em;color:var(--_muted);display:flex;flex-wrap:wrap;align-items:center;gap:.5em}
.status.error{color:var(--_error)}
.status.none{color:var(--_fg);font-weight:600}
.list{margin:.35em 0 0;padding:.25em;background:var(--_bg);border:1px solid var(--_border);border-radius:var(--_radius)}
.list[aria-busy=true]{opacity:.55}
.group+.group{margin-top:.25em;border-top:1px solid var(--_border);padding-top:.25em}
.label{margin:.35em .6em .15em;font-size:.75em;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:var(--_muted)}
.opt{border-radius:calc(var(--_radius) - 4px)}
.opt[aria-selected=true]{background:var(--_hover);outline:2px solid var(--_accent);outline-offset:-2px}
.opt a{display:block;padding:.55em .65em;color:inherit;text-decoration:none;overflow-wrap:anywhere}
.opt a:hover{background:var(--_hover);border-radius:inherit}
.quote{display:block}
.answer .quote{font-size:1.1em;line-height:1.45}
.more .quote{display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}
mark{background:var(--_mark);color:var(--_markfg);border-radius:2px;padding:0 .08em}
.meta{display:flex;flex-wrap:wrap;gap:.1em .9em;margin-top:.3em;font-size:.8em;color:var(--_muted)}
.crumbs{color:var(--_accent);font-weight:500}
.conf{font-variant-numeric:tabular-nums}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
@media (forced-colors:active){.box:focus-within{outline:2px solid Highlight;outline-offset:1px}.opt[aria-selected=true]{outline-color:Highlight}mark{border:1px solid}}
`;

  let sheet = null;
  function adoptStyles(root) {
    // A constructed stylesheet is not an inline <style>, so a host page whose CSP forbids
    // 'unsafe-inline' styles still styles the widget; <style> is the fallback for old browsers.
    try {
      sheet = sheet || new CSSStyleSheet();
      if (!sheet.cssRules.length) sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch {
      root.append(h("style", {}, CSS));
    }
  }

  const instances = [];
  let uid = 0;

  function isEditable(node) {
    if (!(node instanceof Element)) return false;
    if (node.isContentEditable || node.tagName === "TEXTAREA" || node.tagName === "SELECT") return true;
    return node.tagName === "INPUT" && !/^(button|checkbox|radio|reset|submit|file|image|range|color)$/.test(node.type);
  }

  // "/" and Ctrl/Cmd+K focus the first widget on the page, unless typed into another field
  // (editors use Ctrl+K for links); inside a widget's own box they are ordinary keys.
  function onGlobalKey(event) {
    const target = instances[0];
    if (!target || event.defaultPrevented || event.isComposing) return;
    const slash = event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey;
    const ctrlK = (event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k";
    if (!(slash || ctrlK) || isEditable(event.composedPath()[0])) return;
    event.preventDefault();
    target.focus();
  }

  const isText = (v) => typeof v === "string";
  const optional = (v, check) => v === undefined || v === null || check(v);

  /** Whether `c` holds the fields a citation is drawn from, each of the type it is read as. */
  function isCitation(c) {
    return !!c && typeof c === "object" && isText(c.quote) && isText(c.document_id) &&
      Number.isInteger(c.start) && Number.isInteger(c.end) && optional(c.document_title, isText) &&
      optional(c.section, isText) && optional(c.section_path, (p) => Array.isArray(p) && p.every(isText));
  }

  /** Whether `data` is an answer of `/v1/ask` that the widget can show (a proxy's page or a stray shape is not). */
  function isAnswer(data) {
    return !!data && typeof data === "object" && Array.isArray(data.citations) && data.citations.every(isCitation) &&
      (!data.answerable || Number.isFinite(data.confidence));
  }

  /** "p. 3" or "pp. 3–4" for a PDF citation (its `pages`), else "". */
  function pageLabel(c) {
    const pages = Array.isArray(c.pages) ? c.pages.filter(Number.isInteger) : [];
    if (!pages.length) return "";
    return pages.length === 1 ? `p. ${pages[0]}` : `pp. ${pages[0]}–${pages[pages.length - 1]}`;
  }

  class QaSearch extends HTMLElement {
    static observedAttributes = ["placeholder", "label"];

    #seq = 0; // number of the latest request: an older response never replaces a newer one
    #ctrl = null;
    #timer = 0;
    #retryTimer = 0;
    #asked = "";
    #active = -1;
    #options = [];
    #returnTo = null;
    #ids = `qa${++uid}`;
    #input;
    #spinner;
    #clearButton;
    #key;
    #status;
    #message;
    #list;

    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      adoptStyles(root);
      const id = this.#ids;
      this.#input = h("input", {
        id: `${id}-q`, part: "input", type: "text", role: "combobox", "aria-expanded": "false",
        "aria-controls": `${id}-list`, "aria-autocomplete": "none", "aria-describedby": `${id}-status`,
        autocomplete: "off", autocapitalize: "off", spellcheck: "false", enterkeyhint: "search", maxlength: "1000",
      });
      this.#spinner = h("span", { class: "spin", "aria-hidden": "true", hidden: true });
      this.#clearButton = h("button", { type: "button", class: "clear", part: "clear", "aria-label": "Clear question", hidden: true }, "×");
      this.#key = h("kbd", { "aria-hidden": "true", title: "Press / to search" }, "/");
      this.#message = h("span", { id: `${id}-status`, role: "status", "aria-live": "polite", "aria-atomic": "true" });
      this.#status = h("div", { class: "status", part: "status" }, this.#message);
      this.#list = h("div", { id: `${id}-list`, class: "list", part: "results", role: "listbox", "aria-label": "Answer and sources", hidden: true });
      root.append(
        h("div", { class: "box", part: "box" }, h("span", { class: "icon", "aria-hidden": "true" }), this.#input, this.#spinner, this.#key, this.#clearButton),
        this.#status,
        this.#list,
      );
      this.#input.addEventListener("input", () => this.#onInput());
      this.#input.addEventListener("keydown", (e) => this.#onKey(e));
      this.#clearButton.addEventListener("click", () => {
        this.clear();
        this.#input.focus();
      });
      this.#list.addEventListener("mousedown", (e) => e.target.closest?.("a") || e.preventDefault());
      this.#applyAttributes();
    }

    connectedCallback() {
      if (!instances.includes(this)) instances.push(this);
      instances.sort((a, b) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
      if (instances.length === 1) document.addEventListener("keydown", onGlobalKey);
    }

    disconnectedCallback() {
      instances.splice(instances.indexOf(this), 1);
      if (!instances.length) document.removeEventListener("keydown", onGlobalKey);
      this.#cancel();
    }

    attributeChangedCallback() {
      this.#applyAttributes();
    }

    /** The service's origin (and path prefix), without a trailing slash. */
    get endpoint() {
      const value = (this.getAttribute("endpoint") || "").trim();
      try {
        const url = new URL(value || SCRIPT_ORIGIN, location.href);
        return /^https?:$/.test(url.protocol) ? url.href.replace(/\/+$/, "") : SCRIPT_ORIGIN;
      } catch {
        return SCRIPT_ORIGIN;
      }
    }

    /** The path of the collection asked: "" for the default one, else "/v1/collections/<name>"
     *  (a name the service does not know is answered with a problem, shown like any other error). */
    get collectionPath() {
      const name = (this.getAttribute("collection") || "").trim();
      return name && name !== "default" ? `/v1/collections/${encodeURIComponent(name)}` : "";
    }

    get topK() {
      const k = parseInt(this.getAttribute("top-k") || "3", 10);
      return Number.isFinite(k) ? Math.min(20, Math.max(1, k)) : 3;
    }

    get value() {
      return this.#input.value;
    }

    set value(text) {
      this.#input.value = text;
      this.#onInput();
    }

    focus(options) {
      const active = document.activeElement;
      if (active && active !== this && active !== document.body) this.#returnTo = active;
      this.#input.focus(options);
    }

    /** Ask `question` now (no debounce), as if typed and followed by Enter. */
    ask(question) {
      if (question !== undefined) this.#input.value = question;
      this.#syncClear();
      return this.#ask(true);
    }

    /** Empty the box, cancel any request and hide the results. */
    clear() {
      this.#input.value = "";
      this.#cancel();
      this.#asked = "";
      this.#setStatus("");
      this.#show([]);
      this.#syncClear();
    }

    #applyAttributes() {
      this.#input.placeholder = this.getAttribute("placeholder") || "Ask a question…";
      this.#input.setAttribute("aria-label", this.getAttribute("label") || "Ask a question about these documents");
    }

    #syncClear() {
      this.#clearButton.hidden = !this.#input.value;
      this.#key.hidden = !!this.#input.value;
    }

    #cancel() {
      clearTimeout(this.#timer);
      clearInterval(this.#retryTimer);
      this.#seq++;
      this.#ctrl?.abort();
      this.#ctrl = null;
      this.#busy(false);
    }

    #onInput() {
      this.#syncClear();
      clearTimeout(this.#timer);
      // The highlight belongs to the answer of the question as it was: after an edit, Enter asks.
      if (this.#active >= 0) this.#activate(-1);
      if (this.#input.value.trim().length < MIN_CHARS) {
        this.#cancel();
        this.#asked = "";
        this.#setStatus("");
        this.#show([]);
        return;
      }
      this.#timer = setTimeout(() => this.#ask(false), DEBOUNCE_MS);
    }

    #onKey(e) {
      if (e.isComposing) return;
      const n = this.#options.length;
      if ((e.key === "ArrowDown" || e.key === "ArrowUp") && n && !this.#list.hidden) {
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : -1;
        this.#activate(this.#active < 0 ? (step > 0 ? 0 : n - 1) : (this.#active + step + n) % n);
      } else if (e.key === "Enter") {
        e.preventDefault();
        if (this.#active >= 0) this.#options[this.#active].querySelector("a").click();
        else this.#ask(true);
      } else if (e.key === "Escape") {
        e.preventDefault();
        if (this.#input.value || !this.#list.hidden) this.clear();
        else if (this.#returnTo?.isConnected) {
          this.#returnTo.focus();
          this.#returnTo = null;
        } else this.#input.blur();
      }
    }

    #activate(index) {
      this.#options.forEach((o, i) => o.setAttribute("aria-selected", String(i === index)));
      this.#active = index;
      const option = this.#options[index];
      if (option) {
        this.#input.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      } else this.#input.removeAttribute("aria-activedescendant");
    }

    #busy(on) {
      this.#spinner.hidden = !on;
      this.#list.setAttribute("aria-busy", String(on));
    }

    /** Say `text` (a string, or strings and nodes) in the live region, with `action` (a button) after it.
     *  The button stays outside the live region, so its countdown is not read out every second. */
    #setStatus(text, kind = "", action = null) {
      this.#status.className = `status ${kind}`.trim();
      this.#message.replaceChildren(...[text].flat().filter(Boolean));
      this.#message.nextSibling?.remove();
      if (action) this.#message.after(action);
    }

    #url(question) {
      const url = new URL(`${this.endpoint}${this.collectionPath || "/v1"}/ask`);
      url.searchParams.set("q", question);
      url.searchParams.set("k", String(this.topK));
      return url;
    }

    async #ask(force) {
      clearTimeout(this.#timer);
      const question = this.#input.value.trim();
      if (!question || (!force && question === this.#asked)) return;
      this.#cancel();
      const seq = this.#seq;
      const ctrl = (this.#ctrl = new AbortController());
      const timeout = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
      this.#asked = question;
      this.#busy(true);
      this.#setStatus("Searching…");
      let outcome;
      try {
        const res = await fetch(this.#url(question), {
          signal: ctrl.signal, credentials: "omit", mode: "cors", headers: { Accept: "application/json" },
        });
        // Only a body that is not JSON reads as null; an abort (the timeout) or a dropped
        // connection while the body streams in is thrown on, as it would be before the headers.
        const body = await res.json().catch((err) => {
          if (err instanceof SyntaxError) return null;
          throw err;
        });
        outcome = { res, body };
      } catch (err) {
        outcome = { failed: seq === this.#seq && ctrl.signal.aborted ? "timeout" : "network", err };
      } finally {
        clearTimeout(timeout);
      }
      if (seq !== this.#seq) return; // superseded: a newer question or a clear() owns the display now
      this.#ctrl = null;
      this.#busy(false);
      if (outcome.failed) this.#fail(outcome.failed);
      else if (!outcome.res.ok) this.#httpError(outcome.res, outcome.body);
      else if (!isAnswer(outcome.body)) {
        this.#fail("bad");
        outcome.body = null; // not an answer: listeners get what a network failure gives them
      } else this.#render(outcome.body, question);
      this.dispatchEvent(new CustomEvent("qa-result", { detail: outcome.body, bubbles: true, composed: true }));
    }

    #retryButton(seconds) {
      const button = h("button", { type: "button", part: "retry" }, "Try again");
      button.addEventListener("click", () => this.ask());
      if (seconds) {
        button.disabled = true;
        let left = seconds;
        const label = () => (button.textContent = left > 0 ? `Try again in ${left} s` : "Try again");
        label();
        this.#retryTimer = setInterval(() => {
          left -= 1;
          label();
          if (left <= 0) {
            clearInterval(this.#retryTimer);
            button.disabled = false;
          }
        }, 1000);
      }
      return button;
    }

    #fail(kind) {
      const messages = {
        network: "Could not reach the search service. Check the connection and try again.",
        timeout: "The search service took too long to answer.",
        bad: "The search service sent an answer this page cannot read.",
      };
      this.#show([]);
      this.#setStatus(messages[kind], "error", this.#retryButton(0));
      this.#asked = "";
    }

    #httpError(res, body) {
      this.#show([]);
      this.#asked = "";
      // A validation problem (422) only counts fields in `detail` ("1 field is not valid"); its first
      // error's `msg` says what is wrong (api/errors.py: {"errors": [{"loc": [...], "msg": "..."}]}).
      const first = res.status === 422 && body && Array.isArray(body.errors) ? body.errors[0] : null;
      const reason = first && isText(first.msg) ? first.msg : body && body.detail;
      const detail = isText(reason) ? reason : "";
      if (res.status === 429) {
        const wait = retrySeconds(res.headers.get("Retry-After")) ?? retrySeconds(body && body.retry_after);
        // The wait is said once, to screen readers only; on screen the button counts it down.
        const when = wait ? h("span", { class: "sr" }, ` Try again in ${plural(wait, "second", "seconds")}.`) : " Try again in a moment.";
        this.#setStatus(["Too many questions right now.", when], "error", this.#retryButton(wait));
      } else if (res.status >= 500) {
        this.#setStatus(`The search service failed (HTTP ${res.status}). Try again in a moment.`, "error", this.#retryButton(0));
      } else {
        this.#setStatus(`Cannot ask that: ${detail || `HTTP ${res.status}`}`, "error");
      }
    }

    #render(data, question) {
      const cites = data.citations;
      const groups = [];
      if (data.answerable && cites.length) {
        groups.push(["Answer", cites.slice(0, 1), data.confidence]);
        if (cites.length > 1) groups.push(["Also cited", cites.slice(1)]);
        this.#setStatus(plural(cites.length, "result", "results"));
      } else {
        if (cites.length) groups.push(["Related passages", cites]);
        const related = cites.length ? ` · ${plural(cites.length, "related passage", "related passages")}` : "";
        this.#setStatus(`No answer in these documents${related}`, "none");
      }
      let n = 0;
      this.#show(
        groups.map(([label, items, confidence], g) => {
          const labelId = `${this.#ids}-g${g}`;
          return h("div", { class: "group", role: "group", "aria-labelledby": labelId },
            h("div", { class: "label", id: labelId }, label),
            items.map((c) => this.#option(c, question, n++, g === 0 && confidence !== undefined ? confidence : null)));
        }),
      );
    }

    #option(c, question, index, confidence) {
      const quote = String(c.quote ?? "");
      const path = Array.isArray(c.section_path) && c.section_path.length ? c.section_path : [c.section].filter(Boolean);
      const main = confidence !== null;
      const link = h("a", { href: this.#viewUrl(c), target: this.getAttribute("target") || "_blank", rel: "noopener", tabindex: "-1", part: "citation" },
        h("span", { class: "quote", part: "quote" }, highlighted(quote, matchSpans(quote, question))),
        h("span", { class: "meta" },
          h("span", { class: "crumbs", part: "section" }, path.map(String).join(" › ")),
          h("span", { class: "doc", part: "title" }, String(c.document_title ?? c.document_id ?? "")),
          pageLabel(c) ? h("span", { class: "page", part: "page" }, pageLabel(c)) : null,
          main ? h("span", { class: "conf" }, `${Math.round(Number(confidence) * 100)}% confidence`) : null));
      return h("div", { id: `${this.#ids}-o${index}`, class: `opt ${main ? "answer" : "more"}`, role: "option", "aria-selected": "false", part: main ? "option answer" : "option" }, link);
    }

    #viewUrl(c) {
      const id = String(c.document_id ?? "").split("/").map(encodeURIComponent).join("/");
      const url = new URL(`${this.endpoint}${this.collectionPath}/view/${id}`);
      url.searchParams.set("start", String(c.start));
      url.searchParams.set("end", String(c.end));
      url.hash = "cited";
      return url.href;
    }

    #show(nodes) {
      this.#list.replaceChildren(...nodes);
      this.#options = [...this.#list.querySelectorAll("[role=option]")];
      this.#active = -1;
      this.#input.removeAttribute("aria-activedescendant");
      this.#list.hidden = !this.#options.length;
      this.#input.setAttribute("aria-expanded", String(!this.#list.hidden));
    }
  }

  customElements.define("qa-search", QaSearch);
})();
