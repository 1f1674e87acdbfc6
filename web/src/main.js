// The chaintrace investigation UI: a hash-routed single page (search, address / transaction / entity pages,
// trace with flow graph, screening, incident timeline, cases), English or Arabic (true right-to-left).
import { STRINGS } from './i18n.js';
import { h, ltr, units, table } from './dom.js';
import { call, download, key, KEY, ApiError } from './api.js';
import { drawGraph } from './graph.js';

const state = { lang: localStorage.getItem('chaintrace.lang') || 'en', me: null, lastTrace: null };
const t = (k) => STRINGS[state.lang][k] ?? STRINGS.en[k] ?? k;
const main = () => document.getElementById('main');

function setLang(lang) {
  state.lang = lang; localStorage.setItem('chaintrace.lang', lang);
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === 'ar' ? 'rtl' : 'ltr';
  chrome(); route();
}

function link(href, text, attrs = {}) { return h('a', { href, ...attrs }, text); }
function idLink(type, id) { return link(`#/${type}/${encodeURIComponent(id)}`, ltr(id)); }
function section(title, ...kids) { return h('section', { 'aria-label': title }, h('h2', {}, title), ...kids); }
function show(...kids) { const m = main(); m.replaceChildren(...kids); m.focus({ preventScroll: true }); }
function fail(e) {
  const msg = e instanceof ApiError && e.status === 403 ? t('forbidden') : e.message;
  return h('p', { class: 'error', role: 'alert' }, `${t('error')}: `, msg);
}
function field(label, input) { const id = 'f-' + Math.random().toString(36).slice(2, 8); input.id = id; return h('div', { class: 'field' }, h('label', { for: id }, label), input); }

// ------------------------------------------------------------------------------------------------ chrome

function chrome() {
  document.title = t('app');
  const nav = document.getElementById('nav');
  const role = state.me?.role;
  const items = [['#/', t('search'), ['analyst', 'admin']], ['#/trace', t('trace'), ['analyst', 'admin']],
    ['#/screen', t('screen'), ['screener', 'analyst', 'admin']], ['#/incidents', t('incidents'), ['analyst', 'admin']],
    ['#/cases', t('cases'), ['analyst', 'admin']]];
  nav.setAttribute('aria-label', t('nav'));
  nav.replaceChildren(h('ul', {}, items.filter((i) => role && i[2].includes(role)).map((i) => h('li', {}, link(i[0], i[1])))));
  document.getElementById('skip').textContent = t('skip');
  document.getElementById('brand').textContent = t('app');
  const langBtn = document.getElementById('lang');
  langBtn.textContent = t('lang');
  langBtn.setAttribute('lang', state.lang === 'en' ? 'ar' : 'en');
  langBtn.setAttribute('aria-label', `${t('langName')}: ${t('lang')}`);
  const who = document.getElementById('who');
  if (state.me) {
    who.replaceChildren(h('span', {}, `${t('signedAs')} `, ltr(state.me.name, 'name'), ` (${state.me.role}, `, ltr(state.me.org, 'name'), ') '),
      h('button', { type: 'button', onclick: () => { sessionStorage.removeItem(KEY); state.me = null; chrome(); route(); } }, t('signout')));
  } else who.replaceChildren();
}

function loginPage() {
  const input = h('input', { type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', dir: 'ltr' });
  const msg = h('p', { role: 'status' });
  const form = h('form', { class: 'login', onsubmit: async (ev) => {
    ev.preventDefault(); sessionStorage.setItem(KEY, input.value.trim());
    try { state.me = await call('/ui/api/me'); chrome(); location.hash = state.me.role === 'screener' ? '#/screen' : '#/'; route(); }
    catch (e) { sessionStorage.removeItem(KEY); msg.replaceChildren(fail(e)); }
  } }, h('h1', {}, t('signin')), h('p', {}, t('needKey')), field(t('login'), input), h('button', { type: 'submit' }, t('signin')), msg);
  show(form); input.focus();
}

// ------------------------------------------------------------------------------------------------ search

function searchBox(q = '') {
  const input = h('input', { type: 'search', id: 'q', value: q, dir: 'auto', required: true });
  return h('form', { role: 'search', class: 'search', onsubmit: (ev) => { ev.preventDefault(); location.hash = '#/?q=' + encodeURIComponent(input.value.trim()); } },
    h('label', { for: 'q' }, t('searchLabel')), input, h('button', { type: 'submit' }, t('go')));
}

async function searchPage(q) {
  const box = searchBox(q);
  show(h('h1', {}, t('search')), box);
  if (!q) { box.querySelector('input').focus(); return; }
  try {
    const r = await call('/ui/api/search?q=' + encodeURIComponent(q));
    const names = { address: t('address'), tx: t('transaction'), entity: t('entity'), incident: t('incident') };
    const list = r.results.length ? h('ul', { class: 'results' }, r.results.map((x) => h('li', {},
      h('span', { class: 'kind' }, names[x.type], ': '),
      link(x.type === 'incident' ? '#/incidents?focus=' + encodeURIComponent(x.id) : `#/${x.type}/${encodeURIComponent(x.id)}`, ltr(x.title)))))
      : h('p', {}, `${t('noResults')} `, ltr(q));
    main().append(section(t('search'), list));
  } catch (e) { main().append(fail(e)); }
}

// ------------------------------------------------------------------------------------------------ pages

function sanctionRows(sanctions) {
  return sanctions.map((s) => [s.list, s.entity || '—', (s.programs || []).join(', '),
    h('span', {}, s.listed_date ? [`${t('listDate')}: `, ltr(s.listed_date)] : [`${t('firstSeen')}: `, ltr(s.first_seen)],
      s.absent_before ? [' · ', `${t('absentBefore')} `, ltr(s.absent_before)] : null, s.valid_to ? [' · ', `${t('validTo')} `, ltr(s.valid_to)] : null),
    h('span', {}, s.state === true ? t('sanctioned') : s.state === false ? t('notSanctionedNow') : t('unknown'),
      s.reason ? [' (', h('bdi', { dir: 'auto' }, s.reason), ')'] : null)]);
}

function riskName(r) { return r ? t('risk_' + r) : t('unknown'); }

async function addressPage(a) {
  show(h('h1', {}, t('address'), ' ', ltr(a)), h('p', { role: 'status' }, '…'));
  let d;
  try { d = await call('/ui/api/address/' + encodeURIComponent(a)); } catch (e) { return show(h('h1', {}, t('address'), ' ', ltr(a)), fail(e)); }
  const i = d.intel; const s = d.screening;
  const labels = i.tags.length ? table(t('labels'), [t('label'), t('category'), t('trust'), t('source'), 'TLP'],
    i.tags.map((x) => [x.label, x.category || '—', x.trust || '—', x.source || '—', (x.tlp || 'clear').toUpperCase()])) : h('p', {}, t('noLabels'));
  const sanc = i.sanctions.length ? table(t('sanctions'), [t('list'), t('entity'), t('programmes'), t('date'), t('state')], sanctionRows(i.sanctions))
    : h('p', {}, i.sanctioned === null ? [t('sanctionUnknown'), ' (', h('bdi', { dir: 'auto' }, i.sanction_reason), ')'] : t('notSanctioned'));
  const exp = table(t('exposure'), [t('category'), t('kind'), t('hops'), t('amount')], (s.exposures || []).map((x) =>
    [x.category || x.abuse || '—', `${x.type} ${x.direction}`, ltr(String(x.hops_min), 'num'), ltr(x.amount ? units(x.amount, d.chain === 'eth' ? 18 : 8) : '—', 'num')]));
  const cd = d.chain_data;
  const chainData = cd && !cd.error ? h('dl', {}, h('dt', {}, t('balance')), h('dd', {}, ltr(units(String(cd.balance ?? 0), d.chain === 'eth' ? 18 : 8), 'num')),
    h('dt', {}, t('received')), h('dd', {}, ltr(units(String(cd.received ?? 0), d.chain === 'eth' ? 18 : 8), 'num')),
    h('dt', {}, t('txCount')), h('dd', {}, ltr(String(cd.tx_count ?? '—'), 'num'))) : h('p', {}, cd?.error || t('unknown'));
  show(h('h1', {}, t('address'), ' ', ltr(a)),
    h('p', {}, link('#/trace?seed=' + encodeURIComponent(a), t('trace')), ' · ', link('#/screen?a=' + encodeURIComponent(a), t('screen'))),
    section(t('labels'), i.primary ? h('p', { class: 'primary' }, i.primary.label) : null, labels,
      i.restricted ? h('p', { class: 'warn' }, `${i.restricted} ${t('restricted')}`) : null),
    section(t('sanctions'), sanc),
    section(t('exposure'), h('p', { class: 'risk risk-' + (s.risk || 'none') }, `${t('risk')}: `, riskName(s.risk), ` · ${t('score')}: `, ltr(String(s.score ?? '—'), 'num')),
      exp, (s.warnings || []).map((w) => h('p', { class: 'warn', dir: 'auto' }, w))),
    section(t('chainData'), chainData));
}

async function txPage(id) {
  let d;
  try { d = await call('/ui/api/tx/' + encodeURIComponent(id)); } catch (e) { return show(h('h1', {}, t('transaction')), fail(e)); }
  const x = d.tx; const dec = d.chain === 'eth' ? 18 : 8;
  show(h('h1', {}, t('transaction'), ' ', ltr(id)),
    h('p', {}, link('#/trace?seed=' + encodeURIComponent(id), t('trace'))),
    h('dl', {}, h('dt', {}, t('height')), h('dd', {}, ltr(String(x.height ?? x.block_number ?? '—'), 'num')),
      h('dt', {}, t('fee')), h('dd', {}, ltr(x.fee !== undefined ? units(String(x.fee), dec) : '—', 'num'))),
    x.inputs ? table(t('inputs'), ['n', t('address'), t('value')], x.inputs.map((i) => [ltr(String(i.n), 'num'), i.address ? idLink('address', i.address) : '—', ltr(i.prev_txid ? units(String(i.value), dec) : '—', 'num')])) : null,
    x.outputs ? table(t('outputs'), ['n', t('address'), t('value'), t('spentBy')], x.outputs.map((o) => [ltr(String(o.n), 'num'), o.address ? idLink('address', o.address) : '—', ltr(units(String(o.value), dec), 'num'),
      o.spent ? idLink('tx', o.spending_txid) : t('unspent')])) : h('pre', { dir: 'ltr' }, JSON.stringify(x, null, 1)));
}

function incidentTable(list, caption, focus) {
  return h('ol', { class: 'timeline', 'aria-label': caption }, list.map((i) => h('li', { id: 'inc-' + i.incident_id, class: i.incident_id === focus ? 'focus' : null, tabindex: i.incident_id === focus ? '-1' : null },
    h('time', { datetime: i.date }, ltr(i.date, 'date')), ' ', h('strong', {}, i.victim || i.title || i.incident_id), ' ',
    i.amount_usd ? h('span', { class: 'usd' }, ltr(Number(i.amount_usd).toLocaleString('en-US') + ' USD', 'num')) : null, ' ',
    i.actor ? link('#/entity/' + encodeURIComponent(i.actor), i.actor) : null)));
}

async function entityPage(id) {
  let d;
  try { d = await call('/ui/api/entity/' + encodeURIComponent(id)); } catch (e) { return show(h('h1', {}, t('entity')), fail(e)); }
  show(h('h1', {}, t('entity'), ': ', d.actor.name || d.actor.id),
    h('p', {}, `${t('aliases')}: `, (d.actor.aliases || []).join(', ') || '—'),
    section(t('timeline'), h('p', {}, `${t('total')}: `, ltr(Number(d.total_usd).toLocaleString('en-US') + ' USD', 'num')), incidentTable(d.incidents, t('timeline'))));
}

async function incidentsPage(params) {
  let d;
  try { d = await call('/ui/api/incidents'); } catch (e) { return show(h('h1', {}, t('incidents')), fail(e)); }
  const focus = params.get('focus');
  show(h('h1', {}, t('timeline')), h('p', {}, `${t('total')}: `, ltr(Number(d.total_usd).toLocaleString('en-US') + ' USD', 'num')), incidentTable(d.incidents, t('timeline'), focus));
  if (focus) document.getElementById('inc-' + focus)?.focus();
}

// ------------------------------------------------------------------------------------------------ trace

function downloads(base, name) {
  const mk = (lang, fmt) => h('button', { type: 'button', class: 'dl', 'data-lang': lang, 'data-format': fmt,
    onclick: () => download(`${base}?lang=${lang}&format=${fmt}`, `${name}-${lang}.${fmt}`).catch((e) => alert(e.message)) },
  `${t('download')} ${fmt.toUpperCase()} (${lang === 'ar' ? t('arabic') : t('english')})`);
  return h('div', { class: 'downloads' }, mk('en', 'html'), mk('ar', 'html'), mk('en', 'pdf'), mk('ar', 'pdf'));
}

async function traceResult(r) {
  const rep = r.report; const g = r.graph; const dec = g.decimals; const sym = g.asset;
  const seeded = Object.entries(rep.total_seeded || {}).map(([a, v]) => units(v, (rep.assets[a] || {}).decimals ?? dec, a)).join(' + ');
  const box = h('div', { id: 'graph', class: 'graph', tabindex: '0', role: 'application', 'aria-label': `${t('graph')}: ${g.nodes.length} ${t('nodes')}, ${g.edges.length} ${t('edges')}. ${t('graphHelp')}` });
  const cases = h('select', {}, h('option', { value: '' }, '—'));
  try { (await call('/ui/api/cases')).cases.forEach((c) => cases.append(h('option', { value: c.id }, `${c.id} ${c.title}`))); } catch (e) { /* no cases */ }
  const attachMsg = h('span', { role: 'status' });
  const cov = rep.coverage || {}; const hs = cov.heights || {};
  const out = h('div', { id: 'trace-result' },
    rep.partial ? h('p', { class: 'warn', role: 'alert' }, t('partial'), ': ', h('bdi', { dir: 'auto' }, rep.partial_reason || '')) : null,
    h('p', { class: 'summary' }, `${t('seeded')}: `, ltr(seeded, 'num'), ` · ${t('coverage')}: ${t('blocks')} `, ltr(`${hs.first ?? '?'}..${hs.last ?? '?'}`, 'num'),
      ` · ${t('policy')}: `, ltr(rep.policy?.name || '')),
    section(t('graph'), h('p', { class: 'help' }, t('graphHelp')), box,
      h('p', { class: 'legend' }, ['seed', 'pass', 'sink', 'holding', 'stopped'].map((k) => h('span', { class: 'lg lg-' + k }, k)))),
    section(t('sinks'), table(t('sinks'), [t('label'), t('category'), t('address'), t('amount'), t('hops')], (rep.sinks || []).map((s) =>
      [s.label, s.category || '—', s.address ? idLink('address', s.address) : '—', ltr(units(s.amount, dec, sym), 'num'), ltr(String(s.hops), 'num')]))),
    section(t('download'), downloads(`/ui/api/trace/${r.id}/report`, `trace-${r.id}`),
      h('div', { class: 'attach' }, field(t('attach'), cases), h('button', { type: 'button', id: 'attach', onclick: async () => {
        if (!cases.value) return;
        try { await call(`/ui/api/cases/${cases.value}/traces`, { method: 'POST', body: { trace_id: r.id } }); attachMsg.replaceChildren(`${t('attached')} `, link('#/case/' + cases.value, ltr(cases.value))); }
        catch (e) { attachMsg.replaceChildren(fail(e)); }
      } }, t('attach')), attachMsg)));
  return out;
}

export async function renderGraph(container, graph, opts = {}) {
  state.cy = await drawGraph(container, graph, { rtl: state.lang === 'ar', ...opts });
  return state.cy;
}

function openNode(n) {
  if (n.kind === 'seed' && /^(0x)?[0-9a-fA-F]{64}/.test(n.id)) location.hash = '#/tx/' + encodeURIComponent(n.id.split(':')[0]);
  else if (/:\d+$/.test(n.id)) location.hash = '#/tx/' + encodeURIComponent(n.id.split(':')[0]);
  else location.hash = '#/address/' + encodeURIComponent(n.id);
}

function tracePage(params) {
  const seeds = h('textarea', { rows: 3, dir: 'ltr', required: true, spellcheck: 'false' }, params.get('seed') || '');
  const chain = h('select', {}, h('option', { value: 'btc' }, 'btc'), h('option', { value: 'eth' }, 'eth'));
  const policy = h('select', {}, ['haircut', 'poison', 'fifo', 'lifo', 'tiho'].map((p) => h('option', { value: p }, p)));
  const hops = h('input', { type: 'number', min: '0', max: '1000', dir: 'ltr', inputmode: 'numeric' });
  const status = h('p', { role: 'status', 'aria-live': 'polite' });
  const result = h('div');
  const form = h('form', { class: 'trace-form', onsubmit: async (ev) => {
    ev.preventDefault(); status.textContent = t('running'); result.replaceChildren();
    try {
      const body = { seeds: seeds.value.split(/\s+/).filter(Boolean), chain: chain.value, policy: policy.value,
        max_hops: hops.value === '' ? null : Number(hops.value) };
      const r = await call('/ui/api/trace', { method: 'POST', body });
      state.lastTrace = r;
      result.replaceChildren(await traceResult(r));
      await renderGraph(document.getElementById('graph'), r.graph, { onOpen: openNode });
      status.textContent = `${r.graph.nodes.length} ${t('nodes')}, ${r.graph.edges.length} ${t('edges')}`;
    } catch (e) { status.replaceChildren(fail(e)); }
  } }, field(t('seeds'), seeds), h('div', { class: 'row' }, field(t('chain'), chain), field(t('policy'), policy), field(t('maxHops'), hops)),
  h('button', { type: 'submit', id: 'run-trace' }, t('run')));
  show(h('h1', {}, t('trace')), form, status, result);
  seeds.focus();
}

// ------------------------------------------------------------------------------------------------ screen

function screenPage(params) {
  const ta = h('textarea', { rows: 4, dir: 'ltr', required: true, spellcheck: 'false' }, params.get('a') || '');
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await call('/ui/api/screen', { method: 'POST', body: { addresses: ta.value.split(/\s+/).filter(Boolean) } });
      out.replaceChildren(table(t('screen'), [t('subject'), t('risk'), t('score'), t('exposure'), t('sanctions')], r.results.map((x) =>
        [ltr(x.subject), h('span', { class: 'risk risk-' + (x.risk || 'none') }, x.invalid ? h('bdi', { dir: 'auto' }, x.invalid) : riskName(x.risk)), ltr(String(x.score ?? '—'), 'num'),
          (x.exposures || []).map((e) => `${e.category || e.abuse} (${e.type}, ${e.hops_min})`).join('; ') || t('none'),
          (x.sanctions || []).map((s) => `${s.list} ${s.entity || ''}`).join('; ') || t('none')])));
    } catch (e) { out.replaceChildren(fail(e)); }
  } }, field(t('screenLabel'), ta), h('button', { type: 'submit', id: 'run-screen' }, t('screenRun')));
  show(h('h1', {}, t('screen')), form, out);
  ta.focus();
}

// ------------------------------------------------------------------------------------------------ cases

async function casesPage() {
  const title = h('input', { type: 'text', required: true, maxlength: '200', dir: 'auto' });
  const form = h('form', { class: 'new-case', onsubmit: async (ev) => {
    ev.preventDefault();
    try { const c = await call('/ui/api/cases', { method: 'POST', body: { title: title.value } }); location.hash = '#/case/' + c.id; }
    catch (e) { form.append(fail(e)); }
  } }, h('h2', {}, t('newCase')), field(t('title'), title), h('button', { type: 'submit' }, t('create')));
  let list;
  try {
    const r = await call('/ui/api/cases');
    list = r.cases.length ? table(t('cases'), ['id', t('title'), t('status'), t('created')], r.cases.map((c) => [idLink('case', c.id), c.title, c.status, ltr(c.created_at, 'date')]))
      : h('p', {}, t('noCases'));
  } catch (e) { list = fail(e); }
  show(h('h1', {}, t('cases')), list, form);
}

async function casePage(id) {
  let c;
  try { c = await call('/ui/api/cases/' + encodeURIComponent(id)); } catch (e) { return show(h('h1', {}, t('cases')), fail(e)); }
  const text = h('textarea', { rows: 3, required: true, dir: 'auto' });
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    try { await call(`/ui/api/cases/${id}/notes`, { method: 'POST', body: { text: text.value } }); casePage(id); } catch (e) { form.append(fail(e)); }
  } }, field(t('addNote'), text), h('button', { type: 'submit' }, t('addNote')));
  const hasTrace = c.audit.some((a) => a.action === 'trace');
  show(h('h1', {}, t('cases'), ': ', c.title), h('p', {}, ltr(c.id), ` · ${t('status')}: ${c.status} · ${t('created')} `, ltr(c.created_at, 'date')),
    section(t('notes'), h('ul', { class: 'notes' }, c.audit.filter((a) => a.action === 'note').map((a) => h('li', {}, ltr(a.at, 'date'), ' ', ltr(a.analyst, 'name'), ': ', h('span', { dir: 'auto' }, a.detail.text)))), form),
    section(t('audit'), table(t('audit'), ['#', t('time'), t('analyst'), t('action')], c.audit.map((a) => [ltr(String(a.seq), 'num'), ltr(a.at, 'date'), ltr(a.analyst, 'name'), a.action]))),
    section(t('download'), hasTrace ? downloads(`/ui/api/cases/${id}/report`, id) : h('p', {}, t('noTrace'))));
}

// ------------------------------------------------------------------------------------------------ routing, keys

async function route() {
  if (!key()) return loginPage();
  if (!state.me) {
    try { state.me = await call('/ui/api/me'); chrome(); } catch (e) { sessionStorage.removeItem(KEY); return loginPage(); }
  }
  const [path, qs] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(qs || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (state.me.role === 'screener' && parts[0] !== 'screen') return screenPage(params);
  switch (parts[0]) {
    case 'address': return addressPage(parts[1]);
    case 'tx': return txPage(parts[1]);
    case 'entity': return entityPage(parts[1]);
    case 'incidents': return incidentsPage(params);
    case 'trace': return tracePage(params);
    case 'screen': return screenPage(params);
    case 'cases': return casesPage();
    case 'case': return casePage(parts[1]);
    default: return searchPage(params.get('q') || '');
  }
}

function typing(el) { return el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName)); }

document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target) || ev.target?.id === 'graph') return;
  const go = { t: '#/trace', s: '#/screen', i: '#/incidents', c: '#/cases' };
  if (ev.key === '/') { ev.preventDefault(); if (location.hash.startsWith('#/?') || location.hash === '#/' || !location.hash) document.getElementById('q')?.focus(); else location.hash = '#/'; }
  else if (go[ev.key]) location.hash = go[ev.key];
  else if (ev.key === 'l') setLang(state.lang === 'en' ? 'ar' : 'en');
  else if (ev.key === '?') { const d = document.getElementById('help'); d.querySelector('h2').textContent = t('shortcuts'); d.querySelector('p').textContent = t('shortcutList'); d.showModal(); }
});

window.addEventListener('hashchange', route);
window.chaintrace = { renderGraph, setLang, state };
document.getElementById('lang').addEventListener('click', () => setLang(state.lang === 'en' ? 'ar' : 'en'));
setLang(state.lang);
