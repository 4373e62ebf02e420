/* SPDX-License-Identifier: MIT */
/*
 * filter.c - which callsites a report keeps: the view's domain and its
 * --include/--exclude patterns (on the frame that stands for a stack, or any
 * frame with --all-frames), LeakSanitizer-style suppressions, and a leak
 * scan's classes (a site's figures as those of the classes asked for).
 *
 * Suppressions use LeakSanitizer's syntax, one `leak:PATTERN` a line: PATTERN
 * matches a frame's function, source file or module as a substring, `*` is a
 * wildcard, `^` and `$` anchor it. A user suppression matches any frame of the
 * stack. Built-in ones cover one-time libc and loader allocations (stdio
 * buffers, locale and time zone data, iconv, the loader's own tables, the
 * getXXbyYY buffers of getpwuid and its kin, text domain bindings) and
 * match only the frames of the allocation itself, inside libc or the loader.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static bool frame_matches(const char *pat, const mt_sframe_t *f)
{
	const char *cands[] = {f->file, f->file ? mt_base_name(f->file) : NULL, f->func, f->module,
			       f->module ? mt_base_name(f->module) : NULL};
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (cands[i] && fnmatch(pat, cands[i], 0) == 0)
			return true;
	return false;
}

static bool any_matches(char **pats, size_t npats, const mt_sframe_t *where, const mt_frames_t *fr,
			bool all)
{
	for (size_t p = 0; p < npats; p++) {
		if (frame_matches(pats[p], where))
			return true;
		for (size_t i = 0; all && i < fr->n; i++)
			if (frame_matches(pats[p], fr->v[i]))
				return true;
	}
	return false;
}

bool mt_site_passes(const mt_view_t *v, mt_sym_t *sym, const mt_snap_site_t *site)
{
	static mt_frames_t fr;
	if (v->domain >= 0 && site->domain != v->domain)
		return false;
	if (!v->ninclude && !v->nexclude)
		return true;
	mt_sframe_t where = mt_pick_frame(sym, site);
	if (v->all_frames)
		mt_site_frames(sym, site, &fr);
	else
		fr.n = 0;
	if (v->ninclude && !any_matches(v->include, v->ninclude, &where, &fr, v->all_frames))
		return false;
	if (v->nexclude && any_matches(v->exclude, v->nexclude, &where, &fr, v->all_frames))
		return false;
	return true;
}


static const char *const builtin_supps[] = {
	"_IO_file_doallocate",
	"_IO_setb",
	"_nl_",
	"setlocale",
	"__tzfile_read",
	"tzset",
	"__tz_",
	"__gconv",
	"_dl_",
	"__libc_dlopen",
	"dlerror",
	"__nss_",
	"_nss_",
	"nss_",
	"__res_",
	"__resolv_",
	"ld-linux",
	"__new_exitfn",
	"__cxa_atexit",
	"__libc_alloc_buffer",
	/* the buffers getpwuid, getgrnam, gethostbyname and the rest keep for
	 * the process's life, and their getpwent cousins */
	"getXXbyYY.c",
	"getXXent.c",
	/* bindtextdomain and textdomain keep the domain's binding */
	"set_binding_values",
	"textdomain",
};

static mt_supp_t *supps;
static size_t nsupps, nbuiltin;

static void add_supp(const char *text)
{
	size_t len = strlen(text);
	bool start = text[0] == '^', end = len > 0 && text[len - 1] == '$';
	const char *body = text + start;
	size_t blen = len - start - end;
	char *pat = mt_xmalloc(blen + 3);
	size_t at = 0;
	if (!start)
		pat[at++] = '*';
	memcpy(pat + at, body, blen);
	at += blen;
	if (!end)
		pat[at++] = '*';
	pat[at] = '\0';
	supps = mt_xrealloc(supps, (nsupps + 1) * sizeof(*supps));
	supps[nsupps++] = (mt_supp_t){pat, mt_xasprintf("%s", text), 0};
}

static void load_supps(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	unsigned lineno = 0;
	if (!f) {
		fprintf(stderr, "memtrace: %s: cannot open suppressions: %s\n", path,
			strerror(errno));
		exit(MT_EXIT_INPUT);
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *s = line + strspn(line, " \t");
		s[strcspn(s, "\r\n")] = '\0';
		if (!*s || *s == '#')
			continue;
		if (strncmp(s, "leak:", 5) != 0 || !s[5]) {
			char *shown = mt_printable(s);
			fprintf(stderr, "memtrace: %s:%u: not a leak:PATTERN line: '%s'\n", path,
				lineno, shown);
			exit(MT_EXIT_INPUT);
		}
		add_supp(s + 5);
	}
	fclose(f);
}

static bool match(const char *pat, const mt_sframe_t *f)
{
	return (f->func && fnmatch(pat, f->func, 0) == 0) ||
	       (f->file && fnmatch(pat, f->file, 0) == 0) ||
	       (f->module && fnmatch(pat, f->module, 0) == 0);
}

/* The suppression that covers a site, or NULL. */
static mt_supp_t *suppressed(mt_sym_t *sym, const mt_snap_site_t *site)
{
	bool inside = true; /* still in the allocation's own libc/loader frames */
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		for (int j = 0; j < n; j++) {
			if (inside && !mt_is_allocator_frame(&f[j]) &&
			    !(f[j].module && strstr(f[j].module, "ld-linux")))
				inside = false;
			for (size_t k = 0; k < nsupps; k++)
				if ((k >= nbuiltin || inside) && match(supps[k].pat, &f[j]))
					return &supps[k];
		}
	}
	return NULL;
}

void mt_supps_load(bool builtin, const char *const *files, size_t nfiles)
{
	if (builtin)
		for (size_t i = 0; i < sizeof(builtin_supps) / sizeof(builtin_supps[0]); i++)
			add_supp(builtin_supps[i]);
	nbuiltin = nsupps;
	for (size_t i = 0; i < nfiles; i++)
		load_supps(files[i]);
}

bool mt_supps_match(mt_sym_t *sym, const mt_snap_site_t *site)
{
	mt_supp_t *s = suppressed(sym, site);
	if (s)
		s->hits++;
	return s != NULL;
}

void mt_supps_free(void)
{
	for (size_t k = 0; k < nsupps; k++) {
		free(supps[k].pat);
		free(supps[k].text);
	}
	free(supps);
	supps = NULL;
	nsupps = nbuiltin = 0;
}

const mt_supp_t *mt_supps(size_t *n, size_t *nbuilt)
{
	*n = nsupps;
	*nbuilt = nbuiltin;
	return supps;
}

const char *const mt_leak_class_name[] = {
#define X(up, name, text, head) #name,
	MT_LEAK_CLASSES(X)
#undef X
};
const char *const mt_leak_class_text[] = {
#define X(up, name, text, head) text,
	MT_LEAK_CLASSES(X)
#undef X
};
const char *const mt_leak_class_head[] = {
#define X(up, name, text, head) head,
	MT_LEAK_CLASSES(X)
#undef X
};

unsigned mt_leak_classes(const char *cmd, const char *opt, const char *list)
{
	unsigned mask = 0;
	char *copy = mt_xasprintf("%s", list), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k = -1;
		for (int i = 0; i < MT_LEAK_NCLASS; i++)
			if (strcmp(t, mt_leak_class_name[i]) == 0)
				k = i;
		if (strcmp(t, "all") == 0)
			mask |= (1u << MT_LEAK_NCLASS) - 1;
		else if (k >= 0)
			mask |= 1u << k;
		else
			mt_die_usage(cmd, "%s: '%s' is not definite, indirect, possible, reachable or all",
				     opt, t);
	}
	free(copy);
	if (!mask)
		mt_die_usage(cmd, "%s needs at least one class", opt);
	return mask;
}

bool mt_leak_scanned(const mt_snap_t *s)
{
	return s->scan_status == MT_SCAN_DONE;
}

mt_snap_site_t mt_leak_site(const mt_snap_t *s, const mt_snap_site_t *site, unsigned mask)
{
	mt_snap_site_t out = *site;
	if (!mt_leak_scanned(s))
		return out;
	out.live_bytes = out.live_count = 0;
	for (int k = 0; k < MT_LEAK_NCLASS; k++)
		if (mask & (1u << k)) {
			out.live_bytes += site->leak_bytes[k];
			out.live_count += site->leak_blocks[k];
		}
	return out;
}

const char *mt_leak_mask_text(unsigned mask)
{
	static char buf[128];
	size_t at = 0;
	int n = 0, seen = 0;
	for (int k = 0; k < MT_LEAK_NCLASS; k++)
		n += (mask >> k) & 1;
	buf[0] = '\0';
	for (int k = 0; k < MT_LEAK_NCLASS; k++) {
		if (!(mask & (1u << k)))
			continue;
		const char *sep = !seen ? "" : seen == n - 1 ? " or " : ", ";
		/* "definitely or indirectly lost": the shared word once */
		const char *t = mt_leak_class_text[k];
		const char *sp = strchr(t, ' ');
		bool lost = sp && strcmp(sp, " lost") == 0;
		int next_lost = 0;
		for (int j = k + 1; j < MT_LEAK_NCLASS; j++)
			if (mask & (1u << j)) {
				const char *u = strchr(mt_leak_class_text[j], ' ');
				next_lost = u && strcmp(u, " lost") == 0;
				break;
			}
		int len = lost && next_lost ? (int)(sp - t) : (int)strlen(t);
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%.*s", sep, len, t);
		seen++;
	}
	return buf;
}

void mt_leak_say_unscanned(const char *cmd, const mt_snap_t *s)
{
	if (!mt_reason_final(s->reason) || mt_leak_scanned(s))
		return;
	const char *why = !s->scan_status ? "it has none" : mt_scan_status_text(s->scan_status);
	fprintf(stderr,
		"memtrace %s: warning: %s has no leak scan (%s%s%s): every block still live "
		"counts as leaked, caches too\n",
		cmd, s->file, why, s->scan_note && s->scan_note[0] ? ": " : "",
		s->scan_note ? s->scan_note : "");
}

/* "4400 bytes" below 10 KiB (where tracemalloc's size is in bytes too),
 * "196 KiB (200777 bytes)" above: the exact figure once. */

void mt_sites_kept(const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v, bool suppress,
		   bool *keep, mt_suppressed_t *sup)
{
	memset(sup, 0, sizeof(*sup));
	for (size_t i = 0; i < snap->nsites; i++) {
		const mt_snap_site_t *site = &snap->sites[i];
		keep[i] = false;
		if (!site->live_count || !mt_site_passes(v, sym, site))
			continue;
		if (suppress && mt_supps_match(sym, site)) {
			sup->bytes += site->live_bytes;
			sup->blocks += site->live_count;
			sup->sites++;
			continue;
		}
		keep[i] = true;
	}
}

void mt_sites_of_classes(const mt_snap_t *snap, const bool *keep, unsigned mask, mt_snap_t *kept,
			 uint64_t *bytes, uint64_t *blocks)
{
	*kept = *snap;
	kept->sites = mt_xmalloc((snap->nsites + 1) * sizeof(*kept->sites));
	kept->nsites = 0;
	*bytes = *blocks = 0;
	for (size_t i = 0; i < snap->nsites; i++) {
		if (!keep[i])
			continue;
		mt_snap_site_t s = mask ? mt_leak_site(snap, &snap->sites[i], mask) : snap->sites[i];
		if (!s.live_count)
			continue;
		kept->sites[kept->nsites++] = s;
		*bytes += s.live_bytes;
		*blocks += s.live_count;
	}
}
