// A tiny DOM builder: text always goes through textContent (no HTML from data).
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

// An identifier, amount or date: isolated left-to-right inside Arabic text.
export const ltr = (text, cls = 'id') => h('bdi', { dir: 'ltr', class: cls }, text ?? '—');

// Base units (decimal string) -> decimal text with `decimals` places, exact (BigInt).
export function units(amount, decimals = 8, symbol = '') {
  if (amount === null || amount === undefined) return '—';
  let v = BigInt(amount); const neg = v < 0n; if (neg) v = -v;
  const d = BigInt(10) ** BigInt(decimals);
  let frac = (v % d).toString().padStart(decimals, '0').replace(/0+$/, '');
  const whole = (v / d).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + whole + (frac ? '.' + frac : '') + (symbol ? ' ' + symbol : '');
}

export function table(caption, heads, rows) {
  return h('table', {}, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}
