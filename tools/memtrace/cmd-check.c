/* SPDX-License-Identifier: MIT */
/*
 * cmd-check.c - `memtrace check`: a memory budget for CI jobs, as
 * pytest-memray's limit_memory and limit_leaks are for Python tests.
 *   --max-growth SIZE OLD NEW   live memory may grow by at most SIZE
 *   --max-leak SIZE AT_EXIT     at most SIZE may be left live at exit
 * One line says the verdict and, over budget, names the line of code most
 * to blame; the exit status is 0 within budget, 3 over it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace check --max-growth SIZE [OPTIONS] OLD NEW\n"
	"       memtrace check --max-leak SIZE [OPTIONS] AT_EXIT_SNAPSHOT...\n"
	"\n"
	"Fails (exit status 3) with a one-line reason when a memory budget is\n"
	"exceeded, so that a memory regression fails a CI job:\n"
	"      --max-growth SIZE    live memory may grow by at most SIZE from OLD to NEW\n"
	"      --max-leak SIZE      at most SIZE may be lost at exit (definitely or\n"
	"                           indirectly, by the snapshot's leak scan; every live\n"
	"                           block when it has none), after suppressions; several\n"
	"                           snapshots (a run's processes) share the budget\n"
	"      --count CLASSES      what --max-leak counts: definite,indirect (default),\n"
	"                           possible, reachable, all (as in memtrace leaks)\n"
	"SIZE is a number of bytes with an optional K, M or G (powers of 1024;\n"
	"KiB, MB... also read as such), decimals allowed: 0, 64K, 1.5M.\n"
	"\n"
	"      --suppressions FILE  leak:PATTERN lines, as in memtrace leaks; repeatable\n"
	"      --no-builtin         without the built-in libc/loader leak suppressions\n"
	"  -d, --domain D           heap (default), mmap or all\n"
	"      --include PAT        count only stacks whose line matches PAT; repeatable\n"
	"      --exclude PAT        leave out stacks whose line matches PAT; repeatable\n"
	"      --all-frames         --include/--exclude match any frame of the stack\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0 within budget, 1 bad usage, 2 unreadable snapshot,\n"
	"3 over budget.\n";

/* "1.5M" -> 1572864; false on anything else than a size. */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !isfinite(v) || v < 0 || !isdigit((unsigned char)s[0]))
		return false;
	double mult = 1;
	const char *u = end;
	switch (toupper((unsigned char)*u)) {
	case 'K': mult = 1024.0, u++; break;
	case 'M': mult = 1024.0 * 1024, u++; break;
	case 'G': mult = 1024.0 * 1024 * 1024, u++; break;
	}
	if (mult > 1 && *u == 'i')
		u++;
	if (*u == 'B' || (*u == 'b' && mult > 1))
		u++;
	if (*u || v * mult >= 18e18)
		return false;
	*out = (uint64_t)llround(v * mult);
	return true;
}

/* The live figures of the sites that count: in the view, not suppressed. */
typedef struct tally {
	mt_snap_t snap;
	mt_sym_t *sym;
	mt_stats_t st; /* by line */
	uint64_t bytes, blocks;
} tally_t;

static void tally(tally_t *t, const char *path, const mt_view_t *v, bool suppress, unsigned mask)
{
	mt_load_or_die(path, &t->snap);
	t->sym = mt_sym_open(&t->snap);
	bool *keep = mt_xmalloc(t->snap.nsites + 1);
	mt_suppressed_t sup;
	mt_sites_kept(&t->snap, t->sym, v, suppress, keep, &sup);
	mt_snap_t kept;
	mt_sites_of_classes(&t->snap, keep, mask, &kept, &t->bytes, &t->blocks);
	free(keep);
	mt_stats_build(&kept, t->sym, v, false, &t->st);
	free(kept.sites);
}

static void tally_free(tally_t *t)
{
	mt_stats_free(&t->st);
	mt_sym_close(t->sym);
	mt_snap_free(&t->snap);
}

static char *sized(int64_t bytes, bool sign)
{
	char buf[32];
	mt_format_size(buf, sizeof(buf), (double)bytes, sign);
	return mt_xasprintf("%s", buf);
}

/* "; most from FILE:LINE (+SIZE)": the line whose live size grew most
 * from old (NULL: from nothing) to now. */
static char *culprit(const mt_stats_t *now, const mt_stats_t *old)
{
	const mt_stat_t *best = NULL;
	int64_t best_diff = 0;
	for (size_t i = 0; i < now->n; i++) {
		const mt_stat_t *was = old ? mt_stats_find(old, now->v[i].key) : NULL;
		int64_t d = (int64_t)now->v[i].size - (int64_t)(was ? was->size : 0);
		if (d > best_diff)
			best = &now->v[i], best_diff = d;
	}
	if (!best)
		return mt_xasprintf("%s", "");
	char *title = mt_stat_title(best), *shown = mt_printable(title);
	char *size = sized(best_diff, old != NULL);
	char *s = mt_xasprintf("; most from %s (%s)", shown, size);
	free(title);
	free(shown);
	free(size);
	return s;
}

static int verdict(bool over, const char *what, uint64_t budget, const char *why)
{
	char *b = sized((int64_t)budget, false);
	if (over)
		fprintf(stderr, "memtrace check: %s, over the budget of %s%s\n", what, b, why);
	else
		printf("memtrace check: ok: %s, within the budget of %s\n", what, b);
	free(b);
	return over ? MT_EXIT_BUDGET : MT_EXIT_OK;
}

static int check_growth(uint64_t budget, const mt_view_t *v, char **paths)
{
	tally_t t[2];
	for (int i = 0; i < 2; i++)
		tally(&t[i], paths[i], v, false, 0);
	mt_warn_pair(&t[0].snap, &t[1].snap);

	int64_t grew = (int64_t)t[1].bytes - (int64_t)t[0].bytes;
	char *size = sized(grew, true);
	const char *est = t[0].snap.sample_bytes || t[1].snap.sample_bytes ? " (estimated)" : "";
	char *what = mt_xasprintf(
		"live %s memory changed by %s (%+" PRId64 " bytes)%s from %s to %s",
		mt_domain_name(v->domain), size, grew, est, t[0].snap.file, t[1].snap.file);
	bool over = grew > 0 && (uint64_t)grew > budget;
	char *why = over ? culprit(&t[1].st, &t[0].st) : NULL;
	int rc = verdict(over, what, budget, why ? why : "");
	free(why);
	free(what);
	free(size);
	for (int i = 0; i < 2; i++)
		tally_free(&t[i]);
	return rc;
}

/* Several final snapshots (a run's processes: the command and its
 * children) share one budget: their lost bytes are summed, and the line
 * to blame is the largest of any of them. */
static int check_leak(uint64_t budget, const mt_view_t *v, char **paths, int n, unsigned mask)
{
	tally_t *t = mt_xmalloc((size_t)n * sizeof(*t));
	uint64_t bytes = 0, blocks = 0;
	bool scanned = true, est = false;
	for (int i = 0; i < n; i++) {
		tally(&t[i], paths[i], v, true, mask);
		if (!mt_reason_final(t[i].snap.reason)) {
			fprintf(stderr,
				"memtrace check: %s is not an at-exit snapshot (taken %s): --max-leak "
				"needs the ones written at exit\n",
				t[i].snap.file, mt_reason_text(t[i].snap.reason));
			for (int j = 0; j <= i; j++)
				tally_free(&t[j]);
			free(t);
			return MT_EXIT_INPUT;
		}
		for (int j = 0; j < i; j++)
			if (t[j].snap.pid == t[i].snap.pid && t[j].snap.seq == t[i].snap.seq &&
			    t[j].snap.wall_ns == t[i].snap.wall_ns) {
				fprintf(stderr, "memtrace check: %s and %s are the same snapshot\n",
					t[j].snap.file, t[i].snap.file);
				for (int k = 0; k <= i; k++)
					tally_free(&t[k]);
				free(t);
				return MT_EXIT_INPUT;
			}
		mt_leak_say_unscanned("check", &t[i].snap);
		bytes += t[i].bytes;
		blocks += t[i].blocks;
		scanned = scanned && mt_leak_scanned(&t[i].snap);
		est = est || t[i].snap.sample_bytes;
	}
	char *size = sized((int64_t)bytes, false);
	char *where = n == 1 ? mt_xasprintf("%s", t[0].snap.file)
			     : mt_xasprintf("%d snapshots (%s ...)", n, t[0].snap.file);
	char *what = mt_xasprintf("%s (%" PRIu64 " bytes)%s in %" PRIu64 " block%s %s at exit in %s",
				  size, bytes, est ? " (estimated)" : "", blocks, MT_PL(blocks),
				  scanned ? mt_leak_mask_text(mask) : "still live", where);
	bool over = bytes > budget;
	char *why = NULL;
	if (over) {
		/* the snapshot whose largest line is largest */
		int worst = 0;
		uint64_t top = 0;
		for (int i = 0; i < n; i++)
			for (size_t k = 0; k < t[i].st.n; k++)
				if (t[i].st.v[k].size > top)
					top = t[i].st.v[k].size, worst = i;
		why = culprit(&t[worst].st, NULL);
	}
	int rc = verdict(over, what, budget, why ? why : "");
	free(why);
	free(what);
	free(where);
	free(size);
	for (int i = 0; i < n; i++)
		tally_free(&t[i]);
	free(t);
	return rc;
}

int mt_cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		MT_VIEW_LONGOPTS,
		{"max-growth", required_argument, NULL, 'G'},
		{"max-leak", required_argument, NULL, 'L'},
		{"suppressions", required_argument, NULL, 's'},
		{"no-builtin", no_argument, NULL, 'B'},
		{"count", required_argument, NULL, 'K'},
		{0},
	};
	mt_view_t v;
	uint64_t budget = 0;
	unsigned count = 0;
	int mode = 0; /* 'G' or 'L' */
	bool use_builtin = true;
	const char **files = NULL; /* in argv */
	size_t nfiles = 0;
	int c;

	mt_view_init(&v);
	optind = 1;
	while ((c = getopt_long(argc, argv, MT_VIEW_SHORTOPTS, opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return MT_EXIT_OK;
		} else if (c == 'G' || c == 'L') {
			if (mode)
				mt_die_usage("check", "takes one of --max-growth and --max-leak");
			mode = c;
			if (!parse_size(optarg, &budget))
				mt_die_usage("check",
					     "%s takes a size such as 0, 64K or 1.5M, not '%s'",
					     c == 'G' ? "--max-growth" : "--max-leak", optarg);
		} else if (c == 's') {
			files = mt_xrealloc(files, (nfiles + 1) * sizeof(*files));
			files[nfiles++] = optarg;
		} else if (c == 'B') {
			use_builtin = false;
		} else if (c == 'K') {
			count = mt_leak_classes("check", "--count", optarg);
		} else if (!mt_view_option(&v, "check", c, optarg)) {
			mt_die_usage("check", "unknown option");
		}
	}
	if (v.group != MT_GROUP_LINENO || v.cumulative || v.json || v.sort != MT_SORT_SIZE ||
	    v.limit != 10)
		mt_die_usage("check", "--group-by, --cumulative, --json, --sort and --limit do not "
				      "apply");
	if (!mode)
		mt_die_usage("check", "needs a budget: --max-growth SIZE or --max-leak SIZE");
	if ((mode == 'G' && argc - optind != 2) || (mode == 'L' && argc - optind < 1))
		mt_die_usage("check", "%s needs %s, got %d file%s",
			     mode == 'G' ? "--max-growth" : "--max-leak",
			     mode == 'G' ? "two snapshots, OLD and NEW" : "at-exit snapshots",
			     argc - optind, argc - optind == 1 ? "" : "s");
	if (mode == 'G' && (nfiles || !use_builtin || count))
		mt_die_usage("check", "suppressions and --count apply to --max-leak only");

	int rc;
	if (mode == 'G') {
		rc = check_growth(budget, &v, argv + optind);
	} else {
		mt_supps_load(use_builtin, files, nfiles);
		rc = check_leak(budget, &v, argv + optind, argc - optind, count ? count : MT_LEAK_DEFAULT);
		mt_supps_free();
	}
	free(files);
	free(v.include);
	free(v.exclude);
	if (fflush(stdout) != 0)
		return MT_EXIT_INPUT;
	return rc;
}
