// The behaviour of our pages, in one static file: the Content-Security-Policy allows no inline script.
// Each part acts only on the page that has its elements.
"use strict";

// Progress bars: the width comes from data-width (inline style attributes are refused too).
document.querySelectorAll("[data-width]").forEach((bar) => {
  bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.width) || 0)) + "%";
});

// Questionnaires (participant and staff entry): show follow-up questions as they apply. With
// data-key (the participant's own page), keep answers in the browser if the page is reloaded
// midway; staff computers are shared, so the staff page has no key.
(function () {
  const form = document.getElementById("questionnaire");
  if (!form) return;
  const key = form.dataset.key;
  function value(code) {
    const checked = form.querySelector(`[name="${code}"]:checked`);
    if (checked) return checked.value;
    const field = form.querySelector(`[name="${code}"]`);
    return field && field.type !== "radio" && field.type !== "checkbox" ? field.value : "";
  }
  function normal(v) { return v === "yes" ? "true" : v === "no" ? "false" : v; }
  function refresh() {
    form.querySelectorAll("[data-show-if]").forEach((q) => {
      const parent = form.querySelector(`.question[data-code="${q.dataset.showIf}"]`);
      const wanted = q.dataset.equals.split(",");
      const chosen = Array.from(form.querySelectorAll(`[name="${q.dataset.showIf}"]:checked`)).map((e) => normal(e.value));
      const current = chosen.length ? chosen : [normal(value(q.dataset.showIf))];
      q.hidden = (parent && parent.hidden) || !current.some((v) => wanted.includes(v));
    });
  }
  function save() {
    const data = {};
    new FormData(form).forEach((v, k) => { if (k !== "csrfmiddlewaretoken") (data[k] = data[k] || []).push(v); });
    try { localStorage.setItem(key, JSON.stringify(data)); } catch (e) {}
  }
  function restore() {
    let data = null;
    try { data = JSON.parse(localStorage.getItem(key) || "null"); } catch (e) {}
    if (!data || form.querySelector(".is-invalid, .text-danger")) return;
    Object.entries(data).forEach(([name, values]) => {
      form.querySelectorAll(`[name="${name}"]`).forEach((field) => {
        if (field.type === "radio" || field.type === "checkbox") field.checked = values.includes(field.value);
        else field.value = values[0];
      });
    });
  }
  if (key) restore();
  refresh();
  form.addEventListener("change", () => { refresh(); if (key) save(); });
  if (key) form.addEventListener("input", save);
})();

// After a questionnaire is sent: forget the answers kept in the browser.
document.querySelectorAll("[data-forget-answers]").forEach((el) => {
  try { localStorage.removeItem(el.dataset.forgetAnswers); } catch (e) {}
});

// Adverse events: seriousness criteria are asked only of a serious event (still shown if some are ticked).
(function () {
  const form = document.getElementById("adverse-event-form");
  if (!form) return;
  const serious = form.querySelector("#id_serious");
  const criteria = form.querySelector("#div_id_serious_criteria");
  if (!serious || !criteria) return;
  function refresh() {
    criteria.hidden = !serious.checked && !criteria.querySelector("input:checked");
  }
  refresh();
  serious.addEventListener("change", refresh);
})();

// Dataset releases: while a release builds, follow its progress through the API; reload once it is done.
(function () {
  const data = document.getElementById("releases-building");
  if (!data) return;
  const ids = JSON.parse(data.textContent);
  const table = document.getElementById("release-list");
  const base = table && table.dataset.api;
  if (!ids.length || !base) return;
  function poll() {
    Promise.all(ids.map((id) => fetch(base + id + "/", {credentials: "same-origin", headers: {Accept: "application/json"}}).then((r) => r.json())))
      .then((releases) => {
        let done = false;
        for (const release of releases) {
          const row = document.querySelector(`tr[data-release="${release.id}"]`);
          const bar = row && row.querySelector(".progress-bar");
          if (bar) { bar.style.width = release.progress + "%"; bar.textContent = release.progress + "%"; bar.parentElement.setAttribute("aria-valuenow", release.progress); }
          if (release.status !== "queued" && release.status !== "building") done = true;
        }
        if (done) { window.location.reload(); } else { window.setTimeout(poll, 2000); }
      })
      .catch(() => window.setTimeout(poll, 5000));
  }
  window.setTimeout(poll, 1000);
})();

// Tables that scroll sideways (.table-responsive): the scrolling region is reachable with the
// keyboard, so its hidden columns can be scrolled into view with the arrow keys (WCAG 2.1.1), and is
// named after the table's caption or the heading above it. A wrapper that names itself is kept.
document.querySelectorAll(".table-responsive").forEach((region) => {
  if (!region.hasAttribute("tabindex")) region.tabIndex = 0;
  if (!region.hasAttribute("role")) region.setAttribute("role", "region");
  if (region.hasAttribute("aria-label") || region.hasAttribute("aria-labelledby")) return;
  const caption = region.querySelector("caption");
  let name = caption ? caption.textContent : "";
  for (let el = region; el && !name; el = el.parentElement) {
    for (let before = el.previousElementSibling; before && !name; before = before.previousElementSibling) {
      const headings = before.matches("h1, h2, h3, h4, h5, h6, legend, summary") ? [before] : before.querySelectorAll("h1, h2, h3, h4, h5, h6");
      if (headings.length) name = headings[headings.length - 1].textContent;
    }
  }
  region.setAttribute("aria-label", (name || document.title).replace(/\s+/g, " ").trim());
});
