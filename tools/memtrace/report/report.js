// SPDX-License-Identifier: MIT
/*
 * report.js - the script of the page memtrace report writes: reads the JSON
 * block (id "data") and draws the header, the totals chart, the flame graph,
 * the top lines and the diff. Plain JavaScript written for this page, no
 * libraries, nothing fetched: every figure comes from the embedded data.
 *
 * The data (cmd-report.c writes it):
 *   strings[i]  a function, file or module name
 *   frames[i]   [function, file, line, module, offset]: string indices, -1 none
 *   stacks[i]   frame indices, outermost first, allocator frames cut off
 *   groups[i]   [title, function, file, line, module, kind, rate, grew,
 *                sizes[per snapshot], counts[per snapshot], traceback?],
 *               in growth's ranking (steady growers first)
 *   snaps[i]    as `memtrace show --json` describes a snapshot, in time
 *               order, plus sites: [[stack, bytes, blocks], ...]
 * Sizes print as tracemalloc's _format_size does, like the command line.
 */
(function () {
	'use strict';

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
	const str = (i) => (i >= 0 ? D.strings[i] : null);
	const base = (p) => (p ? p.slice(p.lastIndexOf('/') + 1) : p);
	const PLURAL = {
		lineno: 'lines',
		file: 'files',
		function: 'functions',
		module: 'modules',
		traceback: 'tracebacks',
	};

	// ---- formatting ---------------------------------------------------------

	function esc(s) {
		return String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({
			'&': '&amp;',
			'<': '&lt;',
			'>': '&gt;',
			'"': '&quot;',
			"'": '&#39;',
		})[c]);
	}

	// printf's %.0f / %.1f on the dyadic values sizes become: exact ties go
	// to the even digit, as C and Python print them
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
		const s = Math.abs(n).toLocaleString('en-US');
		return (n < 0 ? '-' : sign ? '+' : '') + s;
	}

	function fmtPct(f) {
		const p = f * 100;
		return (p >= 10 || p === 0 ? p.toFixed(1) : p >= 0.1 ? p.toFixed(2) : p.toFixed(3)) + '%';
	}

	function fmtSecs(s) {
		if (Math.abs(s) >= 100)
			return s.toFixed(0) + ' s';
		return (Math.abs(s) >= 10 ? s.toFixed(1) : s.toFixed(2)) + ' s';
	}

	function fmtDate(ns) {
		const d = new Date(ns / 1e6);
		return isNaN(d) ? '?' : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
	}

	const signClass = (v) => (v > 0 ? 'up' : v < 0 ? 'down' : 'zero');

	// ---- the snapshots ------------------------------------------------------

	const S0 = D.snaps[0];
	// seconds since the process started; across processes, by wall clock
	const T = D.snaps.map((s) => (D.mixed ? S0.seconds + (s.wall_ns - S0.wall_ns) / 1e9 : s.seconds));
	const snapLabel = (i) =>
		'#' + D.snaps[i].seq + ' \u00b7 ' + fmtSecs(T[i]) + ' \u00b7 ' + fmtSize(D.snaps[i].totals.heap_live_bytes);

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

	// ---- the tooltip --------------------------------------------------------

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

	// ---- header, verdict, cards ---------------------------------------------

	function renderHeader() {
		const exe = D.exe || '?';
		$('prog').textContent = base(exe);
		$('cmdline').textContent = D.cmdline && D.cmdline !== exe ? D.cmdline : exe;
		const pids = [...new Set(D.snaps.map((s) => s.pid))];
		const facts = [
			[pids.length > 1 ? 'pids' : 'pid', pids.join(', ')],
			['snapshots', String(N)],
			[N > 1 ? 'from' : 'at', fmtDate(S0.wall_ns)],
		];
		if (N > 1) {
			// the end without its date when that is the same
			const a = fmtDate(S0.wall_ns);
			const b = fmtDate(D.snaps[LAST].wall_ns);
			facts[2][1] = a.slice(0, 10) === b.slice(0, 10) ? a.slice(0, 19) + ' to ' + b.slice(11) : a + ' to ' + b;
		}
		if (N > 1)
			facts.push(['span', fmtSecs(T[LAST] - T[0])]);
		facts.push(['domain', D.domain]);
		facts.push(['grouped by', D.group_by + (D.cumulative ? ', cumulative' : '')]);
		let html = facts.map(([k, v]) => '<li>' + esc(k) + ' <b>' + esc(v) + '</b></li>').join('');
		html += D.sample_bytes
			? '<li class="sampled">sampled: one allocation per ' + esc(fmtSize(D.sample_bytes)) +
				  ' on average; sizes and counts are <b>estimates</b></li>'
			: '<li>exact: <b>every allocation recorded</b></li>';
		$('facts').innerHTML = html;

		const v = $('verdict');
		if (D.verdict && N > 1) {
			const bad = /leak|grew|sprawl/.test(D.verdict);
			const warn = /fragmentation|caches/.test(D.verdict);
			v.className = 'verdict ' + (bad ? 'bad' : warn ? 'warn' : 'good');
			v.innerHTML = '<span class="label">Verdict</span><span>' + esc(D.verdict) +
				' <span class="muted">(snapshot #' + esc(S0.seq) + ' to #' +
				esc(D.snaps[LAST].seq) + ')</span></span>';
			v.hidden = false;
		}
		if (D.mixed) {
			const n = $('note');
			n.textContent = 'These snapshots come from more than one process: comparisons mix them.';
			n.hidden = false;
		}
	}

	function renderCards() {
		const a = S0;
		const b = D.snaps[LAST];
		const cards = [
			['Live heap', '#3358d4', (s) => s.totals.heap_live_bytes, (s) => fmtInt(s.totals.heap_live_count) + ' blocks'],
			['Allocator held', '#0e9f8e', (s) => (s.allocator ? s.allocator.held : null),
				(s) => s.allocator.name + ', ' + s.allocator.arenas + ' arena' + (s.allocator.arenas === 1 ? '' : 's')],
			['RSS', '#d97706', (s) => (s.allocator ? s.allocator.rss : null), (s) => 'VMS ' + fmtSize(s.allocator.vms)],
			['mmap live', '#9333ea', (s) => s.totals.mmap_live_bytes, (s) => fmtInt(s.totals.mmap_live_count) + ' regions'],
		];
		let html = '';
		for (const [name, color, get, sub] of cards) {
			const vb = get(b);
			if (vb == null)
				continue;
			const va = get(a);
			let d = sub(b);
			if (N > 1 && va != null) {
				const diff = vb - va;
				d = '<span class="' + signClass(diff) + '">' + esc(fmtSize(diff, true)) + '</span> since #' +
					esc(a.seq) + ' \u00b7 ' + esc(d);
			} else {
				d = esc(d);
			}
			html += '<div class="card" style="--c:' + color + '"><div class="k">' + esc(name) +
				' <span class="muted">at #' + esc(b.seq) + '</span></div><div class="v" title="' +
				esc(fmtInt(vb)) + ' bytes">' + esc(fmtSize(vb)) + '</div><div class="d">' + d + '</div></div>';
		}
		$('cards').innerHTML = html;
	}

	// ---- the totals chart ---------------------------------------------------

	const SERIES = [
		{ key: 'live', name: 'Live heap', color: '#3358d4', get: (s) => s.totals.heap_live_bytes },
		{ key: 'held', name: 'Allocator held', color: '#0e9f8e', get: (s) => (s.allocator ? s.allocator.held : null) },
		{ key: 'rss', name: 'RSS', color: '#d97706', get: (s) => (s.allocator ? s.allocator.rss : null) },
		{ key: 'mmap', name: 'mmap live', color: '#9333ea', get: (s) => s.totals.mmap_live_bytes },
	].filter((se) => D.snaps.every((s) => se.get(s) != null));
	const hiddenSeries = new Set();
	const chart = { x: null, y: null, hover: -1 };

	// 1, 2, 2.5 or 5 times a power of ten, about span/count
	function niceStep(span, count) {
		const raw = span / count;
		const p = Math.pow(10, Math.floor(Math.log10(raw)));
		for (const m of [1, 2, 2.5, 5, 10])
			if (m * p >= raw)
				return m * p;
		return 10 * p;
	}

	function trimNum(v) {
		return String(Math.round(v * 1000) / 1000);
	}

	function renderLegend() {
		$('legend').innerHTML = SERIES.map((se) =>
			'<span class="item' + (hiddenSeries.has(se.key) ? ' off' : '') + '" data-key="' + se.key +
			'" style="--c:' + se.color + '"><span class="sw"></span>' + esc(se.name) + '</span>').join('');
	}

	function renderChart() {
		const box = $('chart');
		const W = Math.max(320, box.clientWidth);
		const H = box.clientHeight || 300;
		const m = { l: 70, r: 18, t: 14, b: 38 };
		const pw = W - m.l - m.r;
		const ph = H - m.t - m.b;
		const shown = SERIES.filter((se) => !hiddenSeries.has(se.key));

		let maxY = 0;
		for (const se of shown)
			for (const s of D.snaps)
				maxY = Math.max(maxY, se.get(s));
		if (maxY <= 0)
			maxY = 1024;
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		let u = 0;
		while (u < units.length - 1 && maxY / Math.pow(1024, u + 1) >= 1)
			u++;
		const unit = Math.pow(1024, u);
		const ystep = niceStep(maxY / unit, 5) * unit;
		const ymax = Math.ceil((maxY * 1.04) / ystep) * ystep;

		// from the process's start, unless the snapshots span processes
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

		let g = '';
		for (let v = 0; v <= ymax + ystep / 2; v += ystep) {
			const y = Y(v).toFixed(1);
			g += '<line class="grid-line" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + y + '" y2="' + y + '"/>';
			g += '<g class="tick"><text x="' + (m.l - 8) + '" y="' + y + '" dy="0.32em" text-anchor="end">' +
				esc(v === 0 ? '0' : trimNum(v / unit) + ' ' + units[u]) + '</text></g>';
		}
		for (let t = Math.ceil(x0 / xstep) * xstep; t <= x1 + xstep * 1e-6; t += xstep) {
			const x = X(t).toFixed(1);
			g += '<line class="grid-line" x1="' + x + '" x2="' + x + '" y1="' + m.t + '" y2="' + (m.t + ph) + '"/>';
			g += '<g class="tick"><text x="' + x + '" y="' + (m.t + ph + 16) + '" text-anchor="middle">' +
				esc(trimNum(t)) + ' s</text></g>';
		}
		g += '<line class="axis-line" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + (m.t + ph) + '" y2="' + (m.t + ph) + '"/>';
		g += '<text class="axis-title" x="' + (m.l + pw / 2) + '" y="' + (H - 4) +
			'" text-anchor="middle">seconds since the process started</text>';

		for (const se of shown) {
			const pts = D.snaps.map((s, i) => X(T[i]).toFixed(1) + ' ' + Y(se.get(s)).toFixed(1));
			g += '<path class="series" data-series="' + se.key + '" data-points="' + pts.length +
				'" stroke="' + se.color + '" d="M' + pts.join(' L') + '"/>';
		}
		g += '<line class="guide" x1="0" x2="0" y1="' + m.t + '" y2="' + (m.t + ph) + '" visibility="hidden"/>';
		g += '<rect class="overlay" x="' + m.l + '" y="' + m.t + '" width="' + pw + '" height="' + ph +
			'" fill="transparent"/>';
		for (const se of shown)
			D.snaps.forEach((s, i) => {
				g += '<circle class="pt' + (i === fg.si ? ' sel' : '') + '" data-series="' + se.key + '" data-i="' +
					i + '" cx="' + X(T[i]).toFixed(1) + '" cy="' + Y(se.get(s)).toFixed(1) + '" r="' +
					(N > 60 ? 2.5 : 3.5) + '" fill="' + se.color + '"/>';
			});
		box.innerHTML = '<svg viewBox="0 0 ' + W + ' ' + H + '" width="' + W + '" height="' + H +
			'" role="img" aria-label="Memory totals per snapshot">' + g + '</svg>';
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
			c.setAttribute('r', +c.dataset.i === i ? 5 : N > 60 ? 2.5 : 3.5);
		const s = D.snaps[i];
		let rows = '';
		for (const se of SERIES) {
			if (hiddenSeries.has(se.key))
				continue;
			const v = se.get(s);
			const d = i > 0 ? v - se.get(D.snaps[i - 1]) : 0;
			rows += '<tr><td><span class="sw" style="--c:' + se.color + '"></span>' + esc(se.name) +
				'</td><td class="r">' + esc(fmtSize(v)) + '</td><td class="r m">' +
				(i > 0 ? esc(fmtSize(d, true)) : '') + '</td></tr>';
		}
		showTip('<div class="t">Snapshot #' + esc(s.seq) + ' \u00b7 ' + esc(fmtSecs(T[i])) + '</div><div class="m">' +
			esc(s.reason) + ', ' + esc(fmtDate(s.wall_ns)) + '</div><table>' + rows + '</table>' +
			(s.allocator ? '<div class="m">' + esc(s.allocator.name) + ': ' + esc(s.allocator.arenas) +
				' arenas, VMS ' + esc(fmtSize(s.allocator.vms)) + '</div>' : ''), e.clientX, e.clientY);
	}

	function chartLeave() {
		hideTip();
		const svg = $('chart').querySelector('svg');
		if (!svg)
			return;
		svg.querySelector('.guide').setAttribute('visibility', 'hidden');
		for (const c of svg.querySelectorAll('.pt'))
			c.setAttribute('r', N > 60 ? 2.5 : 3.5);
	}

	// ---- the flame graph ----------------------------------------------------

	const ROW = 20;
	const FR = D.frames.map((f) => {
		const func = str(f[0]);
		const file = str(f[1]);
		const module = str(f[3]);
		const name = func || (module ? base(module) : '?') + '+0x' + f[4].toString(16);
		const loc = file ? file + (f[2] > 0 ? ':' + f[2] : '') : module ? base(module) : '';
		return { name, loc, module, key: name + '\u0000' + (module || ''), own: !!module && module === D.exe };
	});
	const fg = { si: LAST, root: null, zoom: null, query: '', drawn: [] };

	function buildTree(si) {
		const root = { name: 'all', key: '', fr: null, bytes: 0, count: 0, kids: new Map(), parent: null, locs: null };
		for (const [st, bytes, count] of D.snaps[si].sites) {
			let n = root;
			n.bytes += bytes;
			n.count += count;
			for (const fid of D.stacks[st]) {
				const f = FR[fid];
				let c = n.kids.get(f.key);
				if (!c) {
					c = { name: f.name, key: f.key, fr: f, bytes: 0, count: 0, kids: new Map(), parent: n, locs: new Map() };
					n.kids.set(f.key, c);
				}
				c.bytes += bytes;
				c.count += count;
				if (f.loc)
					c.locs.set(f.loc, (c.locs.get(f.loc) || 0) + bytes);
				n = c;
			}
		}
		const order = (n) => {
			n.sorted = [...n.kids.values()].sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1));
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
		for (const k of path) {
			n = n.kids.get(k);
			if (!n)
				return null;
		}
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

	function colorOf(n) {
		if (!n.fr)
			return '#cfd4dc';
		const h = hash(n.name);
		const r = (h & 0xff) / 255;
		const s = ((h >> 8) & 0xff) / 255;
		if (!n.fr.module)
			return 'hsl(220, 8%, ' + (74 + r * 8).toFixed(0) + '%)';
		if (n.fr.own)
			return 'hsl(' + (12 + r * 30).toFixed(0) + ', ' + (78 + s * 14).toFixed(0) + '%, ' + (60 + s * 8).toFixed(0) + '%)';
		return 'hsl(' + (190 + r * 28).toFixed(0) + ', ' + (42 + s * 18).toFixed(0) + '%, ' + (66 + s * 8).toFixed(0) + '%)';
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

	// marks matching nodes; the matched bytes count a match once, not
	// again for matches below it
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
		if (!fg.query) {
			info.textContent = '';
		} else {
			const total = fg.root.bytes;
			info.textContent = 'Matched: ' + (total ? fmtPct(matched / total) : '0%') + ' of live bytes (' +
				fmtSize(matched) + ')';
			info.dataset.bytes = matched;
			info.dataset.share = total ? matched / total : 0;
		}
	}

	function renderFlame() {
		const box = $('fg');
		const W = box.clientWidth || 1000;
		const z = fg.zoom || fg.root;
		fg.drawn = [];
		if (!fg.root.bytes) {
			box.style.height = '';
			box.innerHTML = '<div class="fg-empty">No live bytes in this snapshot' +
				(D.domain !== 'all' ? ' (' + esc(D.domain) + ')' : '') + '.</div>';
			$('fg-crumbs').textContent = '';
			return;
		}
		const anc = [];
		for (let a = z.parent; a; a = a.parent)
			anc.unshift(a);
		let html = '';
		let depth = 0;
		const put = (n, x, w, d, cls) => {
			const i = fg.drawn.push(n) - 1;
			const px = w * W;
			depth = Math.max(depth, d);
			html += '<div class="fg-node' + (cls ? ' ' + cls : '') + (n.fr && !n.fr.own ? ' lib' : '') +
				(n.hit ? ' match' : '') + (px < 28 ? ' tiny' : '') + '" data-i="' + i + '" data-name="' +
				esc(n.name) + '" data-bytes="' + n.bytes + '" style="left:' + (x * 100).toFixed(4) + '%;width:' +
				(w * 100).toFixed(4) + '%;top:' + d * ROW + 'px;--c:' + colorOf(n) + '">' + esc(n.name) + '</div>';
		};
		anc.forEach((a, d) => put(a, 0, 1, d, 'anc'));
		const walk = (n, x, w, d) => {
			put(n, x, w, d, '');
			let cx = x;
			for (const c of n.sorted) {
				const cw = n.bytes ? (w * c.bytes) / n.bytes : 0;
				if (cw * W >= 0.75)
					walk(c, cx, cw, d + 1);
				cx += cw;
			}
		};
		walk(z, 0, 1, anc.length);
		box.style.height = (depth + 1) * ROW + 1 + 'px';
		box.innerHTML = html;

		const crumbs = [...anc, z].map((n, k, all) => k === all.length - 1
			? '<b>' + esc(n.name) + '</b>'
			: '<a data-depth="' + k + '">' + esc(n.name) + '</a>');
		$('fg-crumbs').innerHTML = fg.zoom ? crumbs.join(' \u203a ') + ' <span class="muted">(' + fmtPct(z.bytes / fg.root.bytes) +
			' of ' + esc(fmtSize(fg.root.bytes)) + ')</span>' : '<span class="muted">' + esc(fmtSize(fg.root.bytes)) + ' live in ' +
			fmtInt(fg.root.count) + ' blocks at snapshot #' + esc(D.snaps[fg.si].seq) + '</span>';
		$('fg-reset').disabled = !fg.zoom;
	}

	function zoomTo(n) {
		fg.zoom = n && n.parent ? n : null;
		hideTip();
		renderFlame();
	}

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
		let locs = '';
		if (n.locs && n.locs.size) {
			const all = [...n.locs.entries()].sort((a, b) => b[1] - a[1]);
			locs = all.slice(0, 4).map(([l, b]) => '<div class="m">' + esc(l) +
				(all.length > 1 ? ' \u00b7 ' + esc(fmtSize(b)) : '') + '</div>').join('');
			if (all.length > 4)
				locs += '<div class="m">and ' + (all.length - 4) + ' more lines</div>';
		}
		const mod = n.fr && n.fr.module ? '<div class="m">' + esc(base(n.fr.module)) + '</div>' : '';
		showTip('<div class="t">' + esc(n.name) + '</div>' + locs + mod + '<table><tr><td>live</td><td class="r">' +
			esc(fmtSize(n.bytes)) + '</td><td class="m">' + esc(fmtInt(n.bytes)) + ' B</td></tr><tr><td>blocks</td><td class="r">' +
			esc(fmtInt(n.count)) + '</td><td></td></tr><tr><td>share</td><td class="r">' + fmtPct(total ? n.bytes / total : 0) +
			'</td><td class="m">' + (z !== fg.root && z.bytes ? fmtPct(n.bytes / z.bytes) + ' of zoom' : '') +
			'</td></tr></table>', e.clientX, e.clientY);
	}

	// ---- the top lines ------------------------------------------------------

	const KIND_ORDER = { steady: 0, growing: 1, jump: 2, flat: 3, shrinking: 4 };
	const TOP_COLS = [
		{ key: 'rank', label: '#', cls: 'rank', sort: null },
		{ key: 'title', label: 'Where', cls: 'l', sort: (g) => g.title, asc: true },
		{ key: 'size', label: 'Size', sort: (g) => g.sizes[LAST] },
		{ key: 'count', label: 'Blocks', sort: (g) => g.counts[LAST] },
		{ key: 'avg', label: 'Average', sort: (g) => (g.counts[LAST] ? g.sizes[LAST] / g.counts[LAST] : 0) },
		{ key: 'net', label: 'Change', sort: (g) => g.sizes[LAST] - g.sizes[0], multi: true },
		{ key: 'cdiff', label: 'Blocks \u0394', sort: (g) => g.counts[LAST] - g.counts[0], multi: true },
		{ key: 'rate', label: 'Rate', sort: (g) => g.rate, multi: true },
		{ key: 'kind', label: 'Growth', cls: 'l', sort: (g) => -g.rank, multi: true },
	].filter((c) => N > 1 || !c.multi);
	const top = { col: 'size', desc: true };

	function sparkline(g) {
		if (N < 2)
			return '';
		const w = 70;
		const h = 18;
		const max = Math.max(1, ...g.sizes);
		const pts = g.sizes.map((v, i) => ((i / (N - 1)) * (w - 2) + 1).toFixed(1) + ' ' + (h - 1 - (v / max) * (h - 2)).toFixed(1));
		return '<svg class="spark" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + ' ' + h + '"><path d="M' +
			pts.join(' L') + '"/></svg>';
	}

	function whereCell(g) {
		const t = g.title;
		const slash = t.lastIndexOf('/');
		const loc = slash >= 0 ? '<span class="muted">' + esc(t.slice(0, slash + 1)) + '</span><b>' + esc(t.slice(slash + 1)) + '</b>'
			: '<b>' + esc(t) + '</b>';
		// a file:line title gets its function below; module(function) has it
		const fn = g.func && g.file && g.line > 0 && D.group_by === 'lineno'
			? '<div class="fn">in <a data-func="' + esc(g.func) + '" title="Find in the flame graph">' + esc(g.func) + '</a></div>'
			: '';
		const trace = g.trace ? ' title="' + esc(g.trace.join('\n')) + '"' : '';
		return '<td class="l where"' + trace + '><div class="loc">' + loc + '</div>' + fn + '</td>';
	}

	function renderTop() {
		const col = TOP_COLS.find((c) => c.key === top.col);
		const rows = G.slice().sort((a, b) => {
			const x = col.sort(a);
			const y = col.sort(b);
			const c = x < y ? -1 : x > y ? 1 : 0;
			return (top.desc ? -c : c) || b.sizes[LAST] - a.sizes[LAST] || (a.title < b.title ? -1 : 1);
		});
		const shown = D.limit && D.limit < rows.length ? rows.slice(0, D.limit) : rows;
		const what = PLURAL[D.group_by] || 'groups';
		$('top-title').textContent = (shown.length < rows.length ? 'Top ' + shown.length + ' of ' + rows.length : 'All ' + rows.length) +
			' ' + what + ' at snapshot #' + D.snaps[LAST].seq + (N > 1 ? ', with their growth since #' + S0.seq : '');

		let html = '<thead><tr>' + TOP_COLS.map((c) => '<th class="' + (c.cls || '') + (c.sort ? ' sortable' : '') +
			'" data-col="' + c.key + '">' + esc(c.label) + '<span class="arrow">' +
			(c.key === top.col ? (top.desc ? '\u25be' : '\u25b4') : '') + '</span></th>').join('') + '</tr></thead><tbody>';
		shown.forEach((g, k) => {
			const size = g.sizes[LAST];
			const count = g.counts[LAST];
			const net = size - g.sizes[0];
			const cd = count - g.counts[0];
			html += '<tr data-key="' + esc(g.title) + '"><td class="rank">' + (k + 1) + '</td>' + whereCell(g) +
				'<td title="' + fmtInt(size) + ' bytes">' + esc(fmtSize(size)) + '</td><td>' + fmtInt(count) + '</td><td>' +
				(count ? esc(fmtSize(size / count)) : '<span class="num-muted">\u2013</span>') + '</td>';
			if (N > 1)
				html += '<td class="' + signClass(net) + '" title="' + fmtInt(net, true) + ' bytes" data-size-diff="' + net + '">' +
					esc(fmtSize(net, true)) + '</td><td class="' + signClass(cd) + '">' + fmtInt(cd, true) + '</td><td class="' +
					signClass(g.rate) + '">' + (g.rate ? esc(fmtSize(g.rate, true)) + '/s' : '<span class="num-muted">\u2013</span>') +
					'</td><td class="l"><span class="badge ' + esc(g.kind) + '" title="grew in ' + g.grew + ' of ' + (N - 1) +
					' intervals">' + esc(g.kind) + '</span>' + sparkline(g) + '</td>';
			html += '</tr>';
		});
		if (!shown.length)
			html += '<tr><td colspan="' + TOP_COLS.length + '" class="l muted">Nothing live in this view.</td></tr>';
		$('top-table').innerHTML = html + '</tbody>';
	}

	// ---- the diff -----------------------------------------------------------

	const diff = { all: false };
	const mag = Math.abs;

	function renderDiff() {
		const a = +$('diff-a').value;
		const b = +$('diff-b').value;
		const rows = [];
		for (const g of G) {
			if (!g.counts[a] && !g.counts[b] && !g.sizes[a] && !g.sizes[b])
				continue;
			rows.push({ g, size: g.sizes[b], count: g.counts[b], sd: g.sizes[b] - g.sizes[a], cd: g.counts[b] - g.counts[a] });
		}
		// tracemalloc's compare_to order: |size change|, size, |count change|, count
		rows.sort((x, y) => mag(y.sd) - mag(x.sd) || y.size - x.size || mag(y.cd) - mag(x.cd) || y.count - x.count ||
			(x.g.title < y.g.title ? 1 : -1));
		let ts = 0;
		let tsd = 0;
		let tc = 0;
		let tcd = 0;
		for (const r of rows) {
			ts += r.size;
			tsd += r.sd;
			tc += r.count;
			tcd += r.cd;
		}
		const sa = D.snaps[a];
		const sb = D.snaps[b];
		let sum = 'Total (' + esc(D.domain) + '): <b>' + esc(fmtSize(ts)) + '</b> (<span class="' + signClass(tsd) + '">' +
			esc(fmtSize(tsd, true)) + '</span>), ' + fmtInt(tc) + ' blocks (' + fmtInt(tcd, true) + ') in ' +
			esc(fmtSecs(T[b] - T[a]));
		if (sa.allocator && sb.allocator) {
			const held = sb.allocator.held - sa.allocator.held;
			const rss = sb.allocator.rss - sa.allocator.rss;
			sum += ' \u00b7 allocator held <b>' + esc(fmtSize(sb.allocator.held)) + '</b> (<span class="' + signClass(held) + '">' +
				esc(fmtSize(held, true)) + '</span>) \u00b7 RSS <b>' + esc(fmtSize(sb.allocator.rss)) + '</b> (<span class="' +
				signClass(rss) + '">' + esc(fmtSize(rss, true)) + '</span>)';
		}
		if (a > b)
			sum += ' <span class="muted">(backwards in time)</span>';
		$('diff-summary').innerHTML = sum;

		const LIMIT = 50;
		const shown = diff.all ? rows : rows.slice(0, LIMIT);
		let html = '<thead><tr><th class="rank">#</th><th class="l">Where</th><th>Size</th><th>Change</th><th>Blocks</th>' +
			'<th>Blocks \u0394</th><th>Average</th></tr></thead><tbody>';
		shown.forEach((r, k) => {
			html += '<tr data-key="' + esc(r.g.title) + '" data-size-diff="' + r.sd + '" data-count-diff="' + r.cd +
				'"><td class="rank">' + (k + 1) + '</td>' + whereCell(r.g) + '<td title="' + fmtInt(r.size) + ' bytes">' +
				esc(fmtSize(r.size)) + '</td><td class="sd ' + signClass(r.sd) + '" title="' + fmtInt(r.sd, true) + ' bytes">' +
				esc(fmtSize(r.sd, true)) + '</td><td>' + fmtInt(r.count) + '</td><td class="' + signClass(r.cd) + '">' +
				fmtInt(r.cd, true) + '</td><td>' + (r.count ? esc(fmtSize(r.size / r.count)) : '<span class="num-muted">\u2013</span>') +
				'</td></tr>';
		});
		if (!shown.length)
			html += '<tr><td colspan="7" class="l muted">No live memory in either snapshot.</td></tr>';
		$('diff-table').innerHTML = html + '</tbody>';
		const more = $('diff-more');
		more.hidden = rows.length <= LIMIT;
		more.textContent = diff.all ? 'Show the top ' + LIMIT : 'Show all ' + rows.length + ' ' + (PLURAL[D.group_by] || 'groups');
	}

	// ---- wiring -------------------------------------------------------------

	function fillSelect(sel, value) {
		sel.innerHTML = D.snaps.map((s, i) => '<option value="' + i + '">' + esc(snapLabel(i)) + '</option>').join('');
		sel.value = String(value);
	}

	function findInFlame(name) {
		const input = $('fg-search');
		input.value = name;
		fg.query = name.toLowerCase();
		applySearch();
		renderFlame();
		$('flame').scrollIntoView({ behavior: 'smooth', block: 'start' });
	}

	function init() {
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
		renderDiff();

		$('legend').addEventListener('click', (e) => {
			const item = e.target.closest('.item');
			if (!item)
				return;
			const k = item.dataset.key;
			if (hiddenSeries.has(k))
				hiddenSeries.delete(k);
			else if (hiddenSeries.size < SERIES.length - 1)
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
		box.addEventListener('click', (e) => {
			const el = e.target.closest('.fg-node');
			if (el)
				zoomTo(fg.drawn[+el.dataset.i]);
		});
		box.addEventListener('mousemove', (e) => {
			const el = e.target.closest('.fg-node');
			if (el)
				flameTip(fg.drawn[+el.dataset.i], e);
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
			const up = pathOf(fg.zoom).length - +a.dataset.depth;
			for (let k = 0; k < up && n; k++)
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

	init();
})();
