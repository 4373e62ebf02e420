// SPDX-License-Identifier: MIT
/*
 * report.js - the script of the page memtrace report writes: reads the JSON
 * block (id "data") and draws the header, the totals chart, the flame graph,
 * the top lines and the diff. Plain JavaScript written for this page, no
 * libraries, nothing fetched: every figure comes from the embedded data.
 * Markup is built as strings through tag() and esc(), which escape every
 * value that comes from the data.
 *
 * The data (cmd-report.c writes it):
 *   strings[i]  a function, file or module name
 *   frames[i]   [function, file, line, module, offset, kind]: string indices,
 *               -1 none; kind 0 native, 1 Python, 2 JIT code (no module)
 *   stacks[i]   frame indices, outermost first, allocator frames cut off
 *   groups[i]   [title, function, file, line, module, kind, rate, grew,
 *                sizes[per snapshot], counts[per snapshot], traceback?],
 *               in growth's ranking (steady growers first)
 *   snaps[i]    as `memtrace show --json` describes a snapshot, in time
 *               order, plus sites: [[stack, bytes, blocks], ...]
 * Sizes print as tracemalloc's _format_size does, like the command line.
 */
'use strict';

// the whole page; its one global name
function memtraceReport() {
	const $ = (id) => document.getElementById(id);
	let D = null;
	try {
		D = JSON.parse($('data').textContent);
	} catch (e) {
		D = null;
	}
	if (!D || !Array.isArray(D.snaps) || !D.snaps.length) {
		document.querySelector('main').textContent = 'This page holds no snapshot data.';
		return;
	}

	const N = D.snaps.length;
	const LAST = N - 1;
	const S0 = D.snaps[0];
	const SN = D.snaps[LAST];
	const str = (i) => (i >= 0 ? D.strings[i] : null);
	const base = (p) => (p ? p.slice(p.lastIndexOf('/') + 1) : p);
	const PLURAL = {
		lineno: 'lines',
		file: 'files',
		function: 'functions',
		module: 'modules',
		traceback: 'tracebacks',
	};
	const what = PLURAL[D.group_by] || 'groups';
	const DOT = ' \u00b7 ';
	const DASH = '<span class="num-muted">\u2013</span>';

	// ---- markup and formatting ------------------------------------------

	const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

	function esc(s) {
		return String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ESC[c]);
	}

	// <name attrs>inner</name>: attribute values are escaped (null and
	// false ones left out), inner is markup already; no inner: <name/>
	function tag(name, attrs, inner) {
		let s = '<' + name;
		for (const k in attrs)
			if (attrs[k] != null && attrs[k] !== false)
				s += ' ' + k + '="' + esc(attrs[k]) + '"';
		return inner === undefined ? s + '/>' : s + '>' + inner + '</' + name + '>';
	}

	// printf's %.0f and %.1f on the dyadic values sizes become: exact ties
	// go to the even digit, as C and Python print them
	function fixed(x, digits) {
		const m = digits ? 10 : 1;
		const y = Math.abs(x) * m;
		const f = Math.floor(y);
		const r = y - f > 0.5 || (y - f === 0.5 && f % 2 === 1) ? f + 1 : f;
		return digits ? Math.floor(r / 10) + '.' + (r % 10) : String(r);
	}

	// tracemalloc's _format_size: "97.7 KiB", "+22 MiB"
	function fmtSize(size, sign) {
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		const pre = size < 0 ? '-' : sign ? '+' : '';
		for (let u = 0; u < units.length; u++) {
			if (Math.abs(size) < 100 && u !== 0)
				return pre + fixed(size, 1) + ' ' + units[u];
			if (Math.abs(size) < 10 * 1024 || u === units.length - 1)
				return pre + fixed(size, 0) + ' ' + units[u];
			size /= 1024;
		}
		return '';
	}

	function fmtInt(n, sign) {
		return (n < 0 ? '-' : sign ? '+' : '') + Math.abs(n).toLocaleString('en-US');
	}

	function fmtPct(f) {
		const p = f * 100;
		const digits = p >= 10 || p === 0 ? 1 : p >= 0.1 ? 2 : 3;
		return p.toFixed(digits) + '%';
	}

	function fmtSecs(s) {
		const digits = Math.abs(s) >= 100 ? 0 : Math.abs(s) >= 10 ? 1 : 2;
		return s.toFixed(digits) + ' s';
	}

	function fmtDate(ns) {
		const d = new Date(ns / 1e6);
		return isNaN(d) ? '?' : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
	}

	const signClass = (v) => (v > 0 ? 'up' : v < 0 ? 'down' : 'zero');

	// a change, colored by its sign, with the exact figure on hover
	function change(v, text, unit, attrs) {
		return tag('td', { class: signClass(v), title: fmtInt(v, true) + unit, ...attrs }, esc(text));
	}

	// ---- the snapshots and the groups -------------------------------------

	// seconds since the process started; across processes, by wall clock
	const T = D.snaps.map((s) =>
		D.mixed ? S0.seconds + (s.wall_ns - S0.wall_ns) / 1e9 : s.seconds);

	function snapLabel(i) {
		const s = D.snaps[i];
		return '#' + s.seq + DOT + fmtSecs(T[i]) + DOT + fmtSize(s.totals.heap_live_bytes);
	}

	const G = D.groups.map((g, i) => ({
		rank: i,
		title: g[0],
		func: str(g[1]),
		file: str(g[2]),
		line: g[3],
		module: str(g[4]),
		kind: g[5],
		rate: g[6],
		grew: g[7],
		sizes: g[8],
		counts: g[9],
		trace: g[10] || null,
	}));

	// ---- the tooltip ------------------------------------------------------

	const tip = $('tip');

	function showTip(html, x, y) {
		tip.innerHTML = html;
		tip.hidden = false;
		const w = tip.offsetWidth;
		const h = tip.offsetHeight;
		let left = x + 14;
		let top = y + 14;
		if (left + w > window.innerWidth - 8)
			left = Math.max(8, x - w - 14);
		if (top + h > window.innerHeight - 8)
			top = Math.max(8, y - h - 14);
		tip.style.left = left + 'px';
		tip.style.top = top + 'px';
	}

	function hideTip() {
		tip.hidden = true;
	}

	const tipRow = (...cells) => tag('tr', {}, cells.join(''));

	// ---- header, verdict, cards -------------------------------------------

	function renderHeader() {
		const exe = D.exe || '?';
		$('prog').textContent = base(exe);
		$('cmdline').textContent = D.cmdline || exe;

		const pids = [...new Set(D.snaps.map((s) => s.pid))];
		const facts = [[pids.length > 1 ? 'pids' : 'pid', pids.join(', ')], ['snapshots', N]];
		const a = fmtDate(S0.wall_ns);
		const b = fmtDate(SN.wall_ns);
		if (N === 1)
			facts.push(['at', a]);
		else if (a.slice(0, 10) === b.slice(0, 10)) // the end's date only when it differs
			facts.push(['from', a.slice(0, 19) + ' to ' + b.slice(11)]);
		else
			facts.push(['from', a + ' to ' + b]);
		if (N > 1)
			facts.push(['span', fmtSecs(T[LAST] - T[0])]);
		facts.push(['domain', D.domain]);
		facts.push(['grouped by', D.group_by + (D.cumulative ? ', cumulative' : '')]);
		let html = facts.map(([k, v]) => tag('li', {}, esc(k) + ' ' + tag('b', {}, esc(v))));
		if (D.sample_bytes)
			html.push(tag('li', { class: 'sampled' }, 'sampled: one allocation per ' +
				esc(fmtSize(D.sample_bytes)) + ' on average; sizes and counts are ' +
				tag('b', {}, 'estimates')));
		else
			html.push(tag('li', {}, 'exact: ' + tag('b', {}, 'every allocation recorded')));
		$('facts').innerHTML = html.join('');

		const v = $('verdict');
		if (D.verdict && N > 1) {
			const bad = /leak|grew|sprawl/.test(D.verdict);
			const warn = /fragmentation|caches/.test(D.verdict);
			v.className = 'verdict ' + (bad ? 'bad' : warn ? 'warn' : 'good');
			v.innerHTML = tag('span', { class: 'label' }, 'Verdict') + tag('span', {},
				esc(D.verdict) + ' ' + tag('span', { class: 'muted' },
					'(snapshot #' + esc(S0.seq) + ' to #' + esc(SN.seq) + ')'));
			v.hidden = false;
		}
		if (D.mixed) {
			$('note').textContent =
				'These snapshots come from more than one process: comparisons mix them.';
			$('note').hidden = false;
		}
	}

	const alloc = (key) => (s) => (s.allocator ? s.allocator[key] : null);
	const CARDS = [
		{
			name: 'Live heap',
			color: '#3358d4',
			get: (s) => s.totals.heap_live_bytes,
			sub: (s) => fmtInt(s.totals.heap_live_count) + ' blocks',
		},
		{
			name: 'Allocator held',
			color: '#0e9f8e',
			get: alloc('held'),
			sub: (s) => s.allocator.name + ', ' + s.allocator.arenas +
				(s.allocator.arenas === 1 ? ' arena' : ' arenas'),
		},
		{
			name: 'RSS',
			color: '#d97706',
			get: alloc('rss'),
			sub: (s) => 'VMS ' + fmtSize(s.allocator.vms),
		},
		{
			name: 'mmap live',
			color: '#9333ea',
			get: (s) => s.totals.mmap_live_bytes,
			sub: (s) => fmtInt(s.totals.mmap_live_count) + ' regions',
		},
	];

	function renderCards() {
		let html = '';
		for (const c of CARDS) {
			const now = c.get(SN);
			const then = c.get(S0);
			if (now == null)
				continue;
			let sub = esc(c.sub(SN));
			if (N > 1 && then != null)
				sub = tag('span', { class: signClass(now - then) }, esc(fmtSize(now - then, true))) +
					' since #' + esc(S0.seq) + DOT + sub;
			html += tag('div', { class: 'card', style: '--c:' + c.color },
				tag('div', { class: 'k' }, esc(c.name) + ' ' +
					tag('span', { class: 'muted' }, 'at #' + esc(SN.seq))) +
				tag('div', { class: 'v', title: fmtInt(now) + ' bytes' }, esc(fmtSize(now))) +
				tag('div', { class: 'd' }, sub));
		}
		$('cards').innerHTML = html;
	}

	// ---- the totals chart -------------------------------------------------

	const SERIES = [
		{ key: 'live', name: 'Live heap', color: '#3358d4', get: (s) => s.totals.heap_live_bytes },
		{ key: 'held', name: 'Allocator held', color: '#0e9f8e', get: alloc('held') },
		{ key: 'rss', name: 'RSS', color: '#d97706', get: alloc('rss') },
		{ key: 'mmap', name: 'mmap live', color: '#9333ea', get: (s) => s.totals.mmap_live_bytes },
	].filter((se) => D.snaps.every((s) => se.get(s) != null));
	const hiddenSeries = new Set();
	const chart = { x: null };
	const dotR = N > 60 ? 2.5 : 3.5;

	// 1, 2, 2.5 or 5 times a power of ten, about span/count
	function niceStep(span, count) {
		const raw = span / count;
		const p = Math.pow(10, Math.floor(Math.log10(raw)));
		for (const m of [1, 2, 2.5, 5])
			if (m * p >= raw)
				return m * p;
		return 10 * p;
	}

	// a tick's value with the digits its step needs, no trailing zeros
	function tickText(v, step) {
		const k = Math.floor(Math.log10(step) + 1e-9);
		const m = step / Math.pow(10, k);
		const digits = Math.max(0, -k) + (Math.abs(m - 2.5) < 1e-9 ? 1 : 0);
		return String(Number(v.toFixed(Math.min(digits, 12))));
	}

	function renderLegend() {
		$('legend').innerHTML = SERIES.map((se) => tag('span', {
			class: 'item' + (hiddenSeries.has(se.key) ? ' off' : ''),
			'data-key': se.key,
			style: '--c:' + se.color,
		}, tag('span', { class: 'sw' }, '') + esc(se.name))).join('');
	}

	// ties in natural order: many.c:10084 before many.c:100804
	function byName(a, b) {
		return a.localeCompare(b, 'en', { numeric: true });
	}

	function renderChart() {
		const box = $('chart');
		if (N < 2) {
			// one point is no curve: say so rather than draw four dots
			box.textContent = 'One snapshot: memory over time needs two or more ' +
				'(kill -USR1 the process again, or MEMTRACE_INTERVAL).';
			box.classList.add('note');
			$('legend').hidden = true;
			$('timeline').querySelector('.hint').hidden = true;
			return;
		}
		const W = Math.max(320, box.clientWidth);
		const H = box.clientHeight || 300;
		const m = { l: 70, r: 18, t: 14, b: 38 };
		const pw = W - m.l - m.r;
		const ph = H - m.t - m.b;
		const bottom = m.t + ph;
		const shown = SERIES.filter((se) => !hiddenSeries.has(se.key));

		// y: bytes, in the unit of the largest value
		let maxY = 0;
		for (const se of shown)
			for (const s of D.snaps)
				maxY = Math.max(maxY, se.get(s));
		if (maxY <= 0)
			maxY = 1024;
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		let u = 0;
		while (u < units.length - 1 && maxY >= Math.pow(1024, u + 1))
			u++;
		const unit = Math.pow(1024, u);
		const ystep = niceStep(maxY / unit, 5) * unit;
		const ymax = Math.ceil((maxY * 1.04) / ystep) * ystep;

		// x: seconds from the process's start, unless the snapshots span
		// processes
		let x0 = D.mixed ? T[0] : Math.min(0, T[0]);
		let x1 = T[LAST];
		if (x1 - x0 <= 0) {
			x0 -= 1;
			x1 += 1;
		}
		const xstep = niceStep(x1 - x0, Math.max(2, Math.floor(pw / 110)));
		const X = (t) => m.l + ((t - x0) / (x1 - x0)) * pw;
		const Y = (v) => m.t + ph - (v / ymax) * ph;
		chart.x = X;

		const line = (x1_, y1_, x2_, y2_, cls, extra) =>
			tag('line', { class: cls, x1: x1_, y1: y1_, x2: x2_, y2: y2_, ...extra });
		const text = (x, y, s, attrs) => tag('g', { class: 'tick' },
			tag('text', { x, y, ...attrs }, esc(s)));
		let g = '';
		for (let v = 0; v <= ymax + ystep / 2; v += ystep) {
			const y = Y(v).toFixed(1);
			g += line(m.l, y, W - m.r, y, 'grid-line');
			g += text(m.l - 8, y, v ? tickText(v / unit, ystep / unit) + ' ' + units[u] : '0',
				{ dy: '0.32em', 'text-anchor': 'end' });
		}
		for (let t = Math.ceil(x0 / xstep) * xstep; t <= x1 + xstep * 1e-6; t += xstep) {
			const x = X(t).toFixed(1);
			g += line(x, m.t, x, bottom, 'grid-line');
			g += text(x, bottom + 16, tickText(t, xstep) + ' s', { 'text-anchor': 'middle' });
		}
		g += line(m.l, bottom, W - m.r, bottom, 'axis-line');
		g += tag('text', { class: 'axis-title', x: m.l + pw / 2, y: H - 4, 'text-anchor': 'middle' },
			'seconds since the process started');

		for (const se of shown) {
			const pts = D.snaps.map((s, i) => X(T[i]).toFixed(1) + ' ' + Y(se.get(s)).toFixed(1));
			g += tag('path', {
				class: 'series',
				'data-series': se.key,
				'data-points': pts.length,
				stroke: se.color,
				d: 'M' + pts.join(' L'),
			});
		}
		g += line(0, m.t, 0, bottom, 'guide', { visibility: 'hidden' });
		g += tag('rect', { class: 'overlay', x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent' });
		for (const se of shown)
			D.snaps.forEach((s, i) => {
				g += tag('circle', {
					class: 'pt' + (i === fg.si ? ' sel' : ''),
					'data-series': se.key,
					'data-i': i,
					cx: X(T[i]).toFixed(1),
					cy: Y(se.get(s)).toFixed(1),
					r: dotR,
					fill: se.color,
				});
			});
		box.innerHTML = tag('svg', {
			viewBox: '0 0 ' + W + ' ' + H,
			width: W,
			height: H,
			role: 'img',
			'aria-label': 'Memory totals per snapshot',
		}, g);
	}

	function nearestSnap(clientX) {
		const svg = $('chart').querySelector('svg');
		if (!svg || !chart.x)
			return -1;
		const x = clientX - svg.getBoundingClientRect().left;
		let best = 0;
		for (let i = 1; i < N; i++)
			if (Math.abs(chart.x(T[i]) - x) < Math.abs(chart.x(T[best]) - x))
				best = i;
		return best;
	}

	function chartHover(e) {
		if (N < 2)
			return;
		const i = nearestSnap(e.clientX);
		const svg = $('chart').querySelector('svg');
		if (i < 0 || !svg)
			return;
		const guide = svg.querySelector('.guide');
		const x = chart.x(T[i]).toFixed(1);
		guide.setAttribute('x1', x);
		guide.setAttribute('x2', x);
		guide.setAttribute('visibility', 'visible');
		for (const c of svg.querySelectorAll('.pt'))
			c.setAttribute('r', +c.dataset.i === i ? 5 : dotR);

		const s = D.snaps[i];
		let rows = '';
		for (const se of SERIES) {
			if (hiddenSeries.has(se.key))
				continue;
			const v = se.get(s);
			const step = i > 0 ? fmtSize(v - se.get(D.snaps[i - 1]), true) : '';
			rows += tipRow(
				tag('td', {}, tag('span', { class: 'sw', style: '--c:' + se.color }, '') + esc(se.name)),
				tag('td', { class: 'r' }, esc(fmtSize(v))),
				tag('td', { class: 'r m' }, esc(step)));
		}
		const a = s.allocator;
		showTip(tag('div', { class: 't' }, 'Snapshot #' + esc(s.seq) + DOT + esc(fmtSecs(T[i]))) +
			tag('div', { class: 'm' }, esc(s.reason) + ', ' + esc(fmtDate(s.wall_ns))) +
			tag('table', {}, rows) +
			(a ? tag('div', { class: 'm' }, esc(a.name) + ': ' + esc(a.arenas) + ' arenas, VMS ' +
				esc(fmtSize(a.vms))) : ''),
			e.clientX, e.clientY);
	}

	function chartLeave() {
		hideTip();
		const svg = $('chart').querySelector('svg');
		if (!svg)
			return;
		svg.querySelector('.guide').setAttribute('visibility', 'hidden');
		for (const c of svg.querySelectorAll('.pt'))
			c.setAttribute('r', dotR);
	}

	// ---- the flame graph --------------------------------------------------

	const ROW = 20;
	// frames merge by function (and module): one box per function per
	// caller, its lines listed in the tooltip
	const FR = D.frames.map((f) => {
		const func = str(f[0]);
		const file = str(f[1]);
		const module = str(f[3]);
		const name = func || (module ? base(module) : '?') + '+0x' + f[4].toString(16);
		return {
			name,
			module,
			loc: file ? file + (f[2] > 0 ? ':' + f[2] : '') : module ? base(module) : '',
			key: name + '\u0000' + (module || '') + (f[5] === 1 ? '\u0000py' : ''),
			own: !!module && module === D.exe,
			py: f[5] === 1,
			jit: f[5] === 2,
		};
	});
	const fg = { si: LAST, root: null, zoom: null, query: '', drawn: [] };

	function newNode(name, key, fr, parent) {
		return { name, key, fr, parent, bytes: 0, count: 0, kids: new Map(), locs: new Map() };
	}

	function buildTree(si) {
		const root = newNode('all', '', null, null);
		for (const [st, bytes, count] of D.snaps[si].sites) {
			let n = root;
			n.bytes += bytes;
			n.count += count;
			for (const fid of D.stacks[st]) {
				const f = FR[fid];
				let c = n.kids.get(f.key);
				if (!c)
					n.kids.set(f.key, (c = newNode(f.name, f.key, f, n)));
				c.bytes += bytes;
				c.count += count;
				if (f.loc)
					c.locs.set(f.loc, (c.locs.get(f.loc) || 0) + bytes);
				n = c;
			}
		}
		// the largest first, so the eye starts with what matters
		const order = (n) => {
			n.sorted = [...n.kids.values()].sort((a, b) =>
				b.bytes - a.bytes || (a.name < b.name ? -1 : 1));
			n.sorted.forEach(order);
		};
		order(root);
		return root;
	}

	function pathOf(n) {
		const p = [];
		for (; n && n.parent; n = n.parent)
			p.unshift(n.key);
		return p;
	}

	function nodeAt(path) {
		let n = fg.root;
		for (const k of path)
			if (!(n = n.kids.get(k)))
				return null;
		return n;
	}

	// 32-bit FNV-1a: a stable color per name
	function hash(s) {
		let h = 0x811c9dc5;
		for (let i = 0; i < s.length; i++) {
			h ^= s.charCodeAt(i);
			h = Math.imul(h, 0x01000193);
		}
		return h >>> 0;
	}

	// the program's own code warm, libraries cool, Python code green, the
	// unknown grey
	function colorOf(n) {
		if (!n.fr)
			return '#cfd4dc';
		const h = hash(n.name);
		const a = (h & 0xff) / 255;
		const b = ((h >> 8) & 0xff) / 255;
		const hsl = (hue, sat, light) =>
			'hsl(' + hue.toFixed(0) + ', ' + sat.toFixed(0) + '%, ' + light.toFixed(0) + '%)';
		if (n.fr.py)
			return hsl(95 + a * 45, 45 + b * 20, 58 + b * 10);
		if (n.fr.jit)
			return hsl(275 + a * 20, 35 + b * 15, 72 + b * 6);
		if (!n.fr.module)
			return hsl(220, 8, 74 + a * 8);
		if (n.fr.own)
			return hsl(12 + a * 30, 78 + b * 14, 60 + b * 8);
		return hsl(190 + a * 28, 42 + b * 18, 66 + b * 8);
	}

	function matches(n) {
		if (!fg.query || !n.fr)
			return false;
		if (n.name.toLowerCase().includes(fg.query))
			return true;
		for (const loc of n.locs.keys())
			if (loc.toLowerCase().includes(fg.query))
				return true;
		return false;
	}

	// marks the matching nodes; a match counts its bytes once, matches
	// below it add nothing
	function applySearch() {
		let matched = 0;
		const walk = (n, under) => {
			n.hit = matches(n);
			if (n.hit && !under)
				matched += n.bytes;
			for (const c of n.sorted)
				walk(c, under || n.hit);
		};
		walk(fg.root, false);
		const info = $('fg-match');
		const total = fg.root.bytes;
		info.textContent = fg.query ? 'Matched: ' + fmtPct(total ? matched / total : 0) +
			' of live bytes (' + fmtSize(matched) + ')' : '';
		info.dataset.bytes = matched;
		info.dataset.share = total ? matched / total : 0;
	}

	function renderFlame() {
		const box = $('fg');
		const W = box.clientWidth || 1000;
		const z = fg.zoom || fg.root;
		fg.drawn = [];
		$('fg-reset').disabled = !fg.zoom;
		if (!fg.root.bytes) {
			box.style.height = '';
			box.innerHTML = tag('div', { class: 'fg-empty' }, 'No live bytes in this snapshot' +
				(D.domain !== 'all' ? ' (' + esc(D.domain) + ')' : '') + '.');
			$('fg-crumbs').textContent = '';
			return;
		}
		// the zoomed frame's callers span the width above it, dimmed
		const anc = [];
		for (let a = z.parent; a; a = a.parent)
			anc.unshift(a);
		const html = [];
		let depth = 0;
		const put = (n, x, w, d, cls) => {
			const px = w * W;
			depth = Math.max(depth, d);
			html.push(tag('div', {
				class: 'fg-node' + cls + (n.fr && !n.fr.own ? ' lib' : '') +
					(n.hit ? ' match' : '') + (px < 28 ? ' tiny' : ''),
				'data-i': fg.drawn.push(n) - 1,
				'data-name': n.name,
				'data-bytes': n.bytes,
				style: 'left:' + (x * 100).toFixed(4) + '%;width:' + (w * 100).toFixed(4) +
					'%;top:' + d * ROW + 'px;--c:' + colorOf(n),
			}, esc(n.parent ? n.name : 'all (' + fmtSize(n.bytes) + ')')));
		};
		anc.forEach((a, d) => put(a, 0, 1, d, ' anc'));
		const walk = (n, x, w, d) => {
			put(n, x, w, d, '');
			let cx = x;
			for (const c of n.sorted) {
				const cw = n.bytes ? (w * c.bytes) / n.bytes : 0;
				if (cw * W >= 0.75) // narrower than a pixel: not drawn
					walk(c, cx, cw, d + 1);
				cx += cw;
			}
		};
		walk(z, 0, 1, anc.length);
		box.style.height = (depth + 1) * ROW + 1 + 'px';
		box.innerHTML = html.join('');

		const total = fg.root.bytes;
		if (fg.zoom) {
			const crumbs = anc.map((n, k) => tag('a', { 'data-depth': k }, esc(n.name)));
			crumbs.push(tag('b', {}, esc(z.name)));
			$('fg-crumbs').innerHTML = crumbs.join(' \u203a ') + ' ' + tag('span', { class: 'muted' },
				'(' + fmtPct(z.bytes / total) + ' of ' + esc(fmtSize(total)) + ')');
		} else {
			$('fg-crumbs').innerHTML = tag('span', { class: 'muted' }, esc(fmtSize(total)) +
				' live in ' + fmtInt(fg.root.count) + ' blocks at snapshot #' +
				esc(D.snaps[fg.si].seq));
		}
	}

	function zoomTo(n) {
		fg.zoom = n && n.parent ? n : null;
		hideTip();
		renderFlame();
	}

	// another snapshot; the zoom stays on the same call path if it exists
	function setFlameSnap(i) {
		const keep = fg.zoom ? pathOf(fg.zoom) : null;
		fg.si = i;
		fg.root = buildTree(i);
		fg.zoom = keep ? nodeAt(keep) : null;
		$('fg-snap').value = String(i);
		applySearch();
		renderFlame();
		for (const c of document.querySelectorAll('#chart .pt'))
			c.classList.toggle('sel', +c.dataset.i === i);
	}

	function flameTip(n, e) {
		const total = fg.root.bytes;
		const z = fg.zoom || fg.root;
		let html = tag('div', { class: 't' }, esc(n.name));
		const locs = [...n.locs.entries()].sort((a, b) => b[1] - a[1]);
		for (const [loc, bytes] of locs.slice(0, 4))
			html += tag('div', { class: 'm' },
				esc(loc) + (locs.length > 1 ? DOT + esc(fmtSize(bytes)) : ''));
		if (locs.length > 4)
			html += tag('div', { class: 'm' }, 'and ' + (locs.length - 4) + ' more lines');
		if (n.fr && n.fr.module && n.fr.loc !== base(n.fr.module))
			html += tag('div', { class: 'm' }, esc(base(n.fr.module)));
		const inZoom = z !== fg.root && z.bytes ? fmtPct(n.bytes / z.bytes) + ' of the zoom' : '';
		html += tag('table', {},
			tipRow(tag('td', {}, 'live'), tag('td', { class: 'r' }, esc(fmtSize(n.bytes))),
				tag('td', { class: 'm' }, esc(fmtInt(n.bytes)) + ' B')) +
			tipRow(tag('td', {}, 'blocks'), tag('td', { class: 'r' }, esc(fmtInt(n.count))),
				tag('td', {}, '')) +
			tipRow(tag('td', {}, 'share'),
				tag('td', { class: 'r' }, fmtPct(total ? n.bytes / total : 0)),
				tag('td', { class: 'm' }, inZoom)));
		showTip(html, e.clientX, e.clientY);
	}

	// ---- the top lines ----------------------------------------------------

	const TOP_COLS = [
		{ key: 'rank', label: '#', cls: 'rank' },
		{ key: 'title', label: 'Where', cls: 'l', sort: (g) => g.title, asc: true },
		{ key: 'size', label: 'Size', sort: (g) => g.sizes[LAST] },
		{ key: 'count', label: 'Blocks', sort: (g) => g.counts[LAST] },
		{
			key: 'avg',
			label: 'Average',
			sort: (g) => (g.counts[LAST] ? g.sizes[LAST] / g.counts[LAST] : 0),
		},
		{ key: 'net', label: 'Change', sort: (g) => g.sizes[LAST] - g.sizes[0], series: true },
		{
			key: 'cdiff',
			label: 'Blocks \u0394',
			sort: (g) => g.counts[LAST] - g.counts[0],
			series: true,
		},
		{ key: 'rate', label: 'Rate', sort: (g) => g.rate, series: true },
		// growth's own ranking: steady growers first
		{ key: 'kind', label: 'Growth', cls: 'l', sort: (g) => -g.rank, series: true },
	].filter((c) => N > 1 || !c.series);
	const top = { col: 'size', desc: true };

	function sparkline(g) {
		if (N < 2)
			return '';
		const w = 70;
		const h = 18;
		const max = Math.max(1, ...g.sizes);
		const pts = g.sizes.map((v, i) =>
			((i / (N - 1)) * (w - 2) + 1).toFixed(1) + ' ' + (h - 1 - (v / max) * (h - 2)).toFixed(1));
		return tag('svg', { class: 'spark', width: w, height: h, viewBox: '0 0 ' + w + ' ' + h },
			tag('path', { d: 'M' + pts.join(' L') }));
	}

	// the title with its directory dimmed; a file:line gets its function
	function whereCell(g) {
		const t = g.title;
		const slash = t.lastIndexOf('/');
		const loc = slash >= 0
			? tag('span', { class: 'muted' }, esc(t.slice(0, slash + 1))) +
				tag('b', {}, esc(t.slice(slash + 1)))
			: tag('b', {}, esc(t));
		let fn = '';
		if (g.func && g.file && g.line > 0 && D.group_by === 'lineno')
			fn = tag('div', { class: 'fn' }, 'in ' +
				tag('a', { 'data-func': g.func, title: 'Find in the flame graph' }, esc(g.func)));
		return tag('td', { class: 'l where', title: g.trace ? g.trace.join('\n') : null },
			tag('div', { class: 'loc' }, loc) + fn);
	}

	function renderTop() {
		const col = TOP_COLS.find((c) => c.key === top.col);
		const rows = G.slice().sort((a, b) => {
			const x = col.sort(a);
			const y = col.sort(b);
			const c = x < y ? -1 : x > y ? 1 : 0;
			return (top.desc ? -c : c) || b.sizes[LAST] - a.sizes[LAST] ||
				byName(a.title, b.title);
		});
		const shown = D.limit && D.limit < rows.length ? rows.slice(0, D.limit) : rows;
		$('top-title').textContent = (shown.length < rows.length
			? 'Top ' + shown.length + ' of ' + rows.length : 'All ' + rows.length) +
			' ' + what + ' at snapshot #' + SN.seq + (N > 1 ? ', with their growth since #' + S0.seq : '');

		const head = TOP_COLS.map((c) => tag('th', {
			class: (c.cls || '') + (c.sort ? ' sortable' : ''),
			'data-col': c.key,
		}, esc(c.label) + tag('span', { class: 'arrow' },
			c.key === top.col ? (top.desc ? '\u25be' : '\u25b4') : '')));
		const body = shown.map((g, k) => {
			const size = g.sizes[LAST];
			const count = g.counts[LAST];
			let cells = tag('td', { class: 'rank' }, k + 1) + whereCell(g) +
				tag('td', { title: fmtInt(size) + ' bytes' }, esc(fmtSize(size))) +
				tag('td', {}, fmtInt(count)) +
				tag('td', {}, count ? esc(fmtSize(size / count)) : DASH);
			if (N > 1) {
				const net = size - g.sizes[0];
				cells += change(net, fmtSize(net, true), ' bytes', { 'data-size-diff': net }) +
					change(count - g.counts[0], fmtInt(count - g.counts[0], true), ' blocks') +
					tag('td', { class: signClass(g.rate) },
						g.rate ? esc(fmtSize(g.rate, true)) + '/s' : DASH) +
					tag('td', { class: 'l' }, tag('span', {
						class: 'badge ' + g.kind,
						title: 'grew in ' + g.grew + ' of ' + (N - 1) + ' intervals',
					}, esc(g.kind)) + sparkline(g));
			}
			return tag('tr', { 'data-key': g.title }, cells);
		});
		if (!shown.length)
			body.push(tag('tr', {}, tag('td', { colspan: TOP_COLS.length, class: 'l muted' },
				'Nothing live in this view.')));
		$('top-table').innerHTML = tag('thead', {}, tag('tr', {}, head.join(''))) +
			tag('tbody', {}, body.join(''));
	}

	// ---- the diff ---------------------------------------------------------

	const DIFF_LIMIT = 50;
	const diff = { all: false };

	function renderDiff() {
		const a = +$('diff-a').value;
		const b = +$('diff-b').value;
		const rows = [];
		for (const g of G)
			if (g.counts[a] || g.counts[b] || g.sizes[a] || g.sizes[b])
				rows.push({
					g,
					size: g.sizes[b],
					count: g.counts[b],
					sd: g.sizes[b] - g.sizes[a],
					cd: g.counts[b] - g.counts[a],
				});
		// tracemalloc's compare_to order: |size change|, size, |count
		// change|, count
		const mag = Math.abs;
		rows.sort((x, y) => mag(y.sd) - mag(x.sd) || y.size - x.size || mag(y.cd) - mag(x.cd) ||
			y.count - x.count || byName(x.g.title, y.g.title));

		const sum = (f) => rows.reduce((acc, r) => acc + r[f], 0);
		const signed = (v) => '(' + tag('span', { class: signClass(v) }, esc(fmtSize(v, true))) + ')';
		let line = 'Total (' + esc(D.domain) + '): ' + tag('b', {}, esc(fmtSize(sum('size')))) + ' ' +
			signed(sum('sd')) + ', ' + fmtInt(sum('count')) + ' blocks (' + fmtInt(sum('cd'), true) +
			') in ' + esc(fmtSecs(T[b] - T[a]));
		const sa = D.snaps[a].allocator;
		const sb = D.snaps[b].allocator;
		if (sa && sb)
			line += DOT + 'allocator held ' + tag('b', {}, esc(fmtSize(sb.held))) + ' ' +
				signed(sb.held - sa.held) + DOT + 'RSS ' + tag('b', {}, esc(fmtSize(sb.rss))) + ' ' +
				signed(sb.rss - sa.rss);
		if (a > b)
			line += ' ' + tag('span', { class: 'muted' }, '(backwards in time)');
		$('diff-summary').innerHTML = line;

		const shown = diff.all ? rows : rows.slice(0, DIFF_LIMIT);
		const head = ['#', 'Where', 'Size', 'Change', 'Blocks', 'Blocks \u0394', 'Average'].map(
			(h, i) => tag('th', { class: i === 0 ? 'rank' : i === 1 ? 'l' : null }, esc(h)));
		const body = shown.map((r, k) => tag('tr', {
			'data-key': r.g.title,
			'data-size-diff': r.sd,
			'data-count-diff': r.cd,
		}, tag('td', { class: 'rank' }, k + 1) + whereCell(r.g) +
			tag('td', { title: fmtInt(r.size) + ' bytes' }, esc(fmtSize(r.size))) +
			change(r.sd, fmtSize(r.sd, true), ' bytes', { class: 'sd ' + signClass(r.sd) }) +
			tag('td', {}, fmtInt(r.count)) +
			change(r.cd, fmtInt(r.cd, true), ' blocks') +
			tag('td', {}, r.count ? esc(fmtSize(r.size / r.count)) : DASH)));
		if (!shown.length)
			body.push(tag('tr', {}, tag('td', { colspan: 7, class: 'l muted' },
				'No live memory in either snapshot.')));
		$('diff-table').innerHTML = tag('thead', {}, tag('tr', {}, head.join(''))) +
			tag('tbody', {}, body.join(''));
		const more = $('diff-more');
		more.hidden = rows.length <= DIFF_LIMIT;
		more.textContent = diff.all ? 'Show the top ' + DIFF_LIMIT
			: 'Show all ' + rows.length + ' ' + what;
	}

	// ---- wiring -----------------------------------------------------------

	function fillSelect(sel, value) {
		sel.innerHTML = D.snaps.map((s, i) => tag('option', { value: i }, esc(snapLabel(i)))).join('');
		sel.value = String(value);
	}

	function findInFlame(name) {
		$('fg-search').value = name;
		fg.query = name.toLowerCase();
		applySearch();
		renderFlame();
		$('flame').scrollIntoView({ behavior: 'smooth', block: 'start' });
	}

	function wire() {
		$('legend').addEventListener('click', (e) => {
			const item = e.target.closest('.item');
			if (!item)
				return;
			const k = item.dataset.key;
			if (hiddenSeries.has(k))
				hiddenSeries.delete(k);
			else if (hiddenSeries.size < SERIES.length - 1) // one stays
				hiddenSeries.add(k);
			renderLegend();
			renderChart();
		});
		const ch = $('chart');
		ch.addEventListener('mousemove', chartHover);
		ch.addEventListener('mouseleave', chartLeave);
		ch.addEventListener('click', (e) => {
			const i = nearestSnap(e.clientX);
			if (i >= 0)
				setFlameSnap(i);
		});

		const box = $('fg');
		const nodeOf = (e) => {
			const el = e.target.closest('.fg-node');
			return el ? fg.drawn[+el.dataset.i] : null;
		};
		box.addEventListener('click', (e) => {
			const n = nodeOf(e);
			if (n)
				zoomTo(n);
		});
		box.addEventListener('mousemove', (e) => {
			const n = nodeOf(e);
			if (n)
				flameTip(n, e);
			else
				hideTip();
		});
		box.addEventListener('mouseleave', hideTip);
		$('fg-reset').addEventListener('click', () => zoomTo(null));
		$('fg-crumbs').addEventListener('click', (e) => {
			const a = e.target.closest('a');
			if (!a)
				return;
			let n = fg.zoom;
			for (let up = pathOf(fg.zoom).length - +a.dataset.depth; up > 0 && n; up--)
				n = n.parent;
			zoomTo(n);
		});
		$('fg-snap').addEventListener('change', (e) => setFlameSnap(+e.target.value));
		$('fg-search').addEventListener('input', (e) => {
			fg.query = e.target.value.trim().toLowerCase();
			applySearch();
			renderFlame();
		});
		document.addEventListener('keydown', (e) => {
			if (e.key === 'Escape' && fg.zoom && document.activeElement === document.body)
				zoomTo(null);
		});

		$('top-table').addEventListener('click', (e) => {
			const f = e.target.closest('a[data-func]');
			if (f)
				return findInFlame(f.dataset.func);
			const th = e.target.closest('th.sortable');
			if (!th)
				return;
			const col = TOP_COLS.find((c) => c.key === th.dataset.col);
			if (top.col === col.key)
				top.desc = !top.desc;
			else
				[top.col, top.desc] = [col.key, !col.asc];
			renderTop();
		});
		$('diff-table').addEventListener('click', (e) => {
			const f = e.target.closest('a[data-func]');
			if (f)
				findInFlame(f.dataset.func);
		});
		$('diff-a').addEventListener('change', renderDiff);
		$('diff-b').addEventListener('change', renderDiff);
		$('diff-more').addEventListener('click', () => {
			diff.all = !diff.all;
			renderDiff();
		});

		// the chart and the flame graph are drawn for a width
		let pending = 0;
		let lastWidth = window.innerWidth;
		window.addEventListener('resize', () => {
			if (window.innerWidth === lastWidth)
				return;
			lastWidth = window.innerWidth;
			clearTimeout(pending);
			pending = setTimeout(() => {
				renderChart();
				renderFlame();
			}, 120);
		});
	}

	// ---- Python objects by type (the census) ------------------------------

	function renderTypes() {
		const T = D.types || [];
		$('types').hidden = !T.length;
		if (!T.length)
			return;
		$('types-title').textContent = 'Python objects by type at snapshot #' + SN.seq +
			(N > 1 ? ', with their growth since #' + S0.seq : '');
		const cols = ['Type', 'Objects', 'Size'].concat(N > 1 ? ['Objects \u0394', 'Growth'] : []);
		const head = cols.map((c, i) => tag('th', { class: i ? '' : 'l' }, esc(c)));
		const body = T.map((t) => {
			const cells = [tag('td', { class: 'l' }, tag('b', {}, esc(t[0]))),
				tag('td', {}, esc(String(t[2][LAST]))), tag('td', {}, esc(fmtSize(t[1][LAST])))];
			if (N > 1) {
				const d = t[2][LAST] - t[2][0];
				cells.push(tag('td', { class: signClass(d) }, esc((d > 0 ? '+' : '') + d)));
				cells.push(tag('td', { class: 'l' }, esc(t[3])));
			}
			return tag('tr', {}, cells.join(''));
		});
		$('types-table').innerHTML = tag('thead', {}, tag('tr', {}, head.join(''))) +
			tag('tbody', {}, body.join(''));
	}

	renderHeader();
	renderCards();
	renderLegend();
	fillSelect($('fg-snap'), LAST);
	fillSelect($('diff-a'), 0);
	fillSelect($('diff-b'), LAST);
	fg.root = buildTree(LAST);
	applySearch();
	renderChart();
	renderFlame();
	renderTop();
	renderTypes();
	renderDiff();
	$('diff').hidden = N < 2; // nothing to compare
	wire();
}

memtraceReport();
