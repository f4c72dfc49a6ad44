// The file manager (/transfer) with JavaScript on: shift-click ticks a range of entries, and its links and search
// forms load the next state in place (no full reload, the scroll stays), keeping the From side's ticks while its
// folder page is the same. Everything works without this file: plain links and GET forms, state in the URL.
// Plain JS rather than an island: the WASM budget has no room, and nothing here needs Rust.
let last;
let shown = new URL(location.href); // the state the page shows (on Back, location has already moved on)
const key = (url) => ['src', 'src_path', 'src_offset', 'src_sort', 'src_order', 'src_filter']
  .map((k) => url.searchParams.get(k)).join('\n');

async function go(url, push, from) {
  const side = from?.closest('section[id]')?.id;
  const ticked = [...document.querySelectorAll('input[name=sel]:checked')].map((b) => b.value);
  const same = key(url) === key(shown);
  let next;
  try {
    const res = await fetch(url, { headers: { accept: 'text/html' } });
    if (!res.ok || !res.url.includes('/transfer?')) throw new Error(res.status);
    next = new DOMParser().parseFromString(await res.text(), 'text/html');
    document.querySelector('main').replaceWith(next.querySelector('main'));
  } catch {
    return location.assign(url); // the plain way: the browser loads it, or shows why not
  }
  shown = url;
  document.title = next.title;
  if (same) document.querySelectorAll('input[name=sel]').forEach((b) => (b.checked = ticked.includes(b.value)));
  if (push) history.pushState(null, '', url);
  last = null;
  // Keyboard and screen reader users land where they were: on the heading of the side they used.
  const heading = document.getElementById(`${side}-heading`);
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

addEventListener('click', (e) => {
  const box = e.target.closest('input[name=sel]');
  if (box) {
    const boxes = [...document.querySelectorAll('input[name=sel]')];
    if (e.shiftKey && last) {
      const [a, b] = [boxes.indexOf(last), boxes.indexOf(box)].sort((x, y) => x - y);
      boxes.slice(a, b + 1).forEach((x) => (x.checked = box.checked));
    }
    last = box;
  }
  const link = e.target.closest('main a[href^="/transfer?"]');
  if (link && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
    e.preventDefault();
    go(new URL(link.href), true, link);
  }
});

addEventListener('submit', (e) => {
  const form = e.target;
  if (form.method !== 'get' || !form.action.includes('/transfer') || form.action.includes('#')) return;
  e.preventDefault();
  const url = new URL(form.action);
  url.search = new URLSearchParams(new FormData(form, e.submitter));
  go(url, true, form);
});

addEventListener('popstate', () => go(new URL(location.href), false));
