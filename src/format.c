/* SPDX-License-Identifier: MIT */
/*
 * format.c - the snapshot records' fields (format.h) as data, and the one
 * encoder and decoder of a record that the writer (inside the profiled
 * process) and the reader share. The lists in format.h are the spec: this
 * file turns them into descriptions, and nothing here knows any record by
 * name. No allocation and no stdio: snapshot.c calls mt_rec_put while it
 * holds the dump lock inside the program.
 */
#include <stddef.h>
#include <string.h>

#include "format.h"

#define MT_F_DESC(R, kind, name, minor, what) \
	{#name, what, MT_F_##kind, minor, (uint16_t)offsetof(R, name)},
#define X(up, code, low, what) \
	static const mt_field_t fields_##low[] = {MT_##up##_FIELDS(MT_F_DESC, mt_rec_##low##_t)};
MT_RECORDS(X)
#undef X

const mt_rec_desc_t mt_rec_descs[] = {
#define X(up, code, low, what) \
	{#up, what, code, sizeof(fields_##low) / sizeof(fields_##low[0]), fields_##low, \
	 sizeof(mt_rec_##low##_t)},
	MT_RECORDS(X)
#undef X
};
const size_t mt_rec_ndescs = sizeof(mt_rec_descs) / sizeof(mt_rec_descs[0]);

const mt_rec_desc_t *mt_rec_desc(uint16_t type)
{
	for (size_t i = 0; i < mt_rec_ndescs; i++)
		if (mt_rec_descs[i].type == type)
			return &mt_rec_descs[i];
	return NULL;
}

static const uint8_t fixed_len[] = {
#define X(kind, fixed) fixed,
	MT_FIELD_KINDS(X)
#undef X
};

size_t mt_rec_len(const mt_rec_desc_t *d, const void *rec)
{
	size_t len = 0;
	for (const mt_field_t *f = d->fields; f < d->fields + d->nfields; f++) {
		len += fixed_len[f->kind];
		if (f->kind == MT_F_str || f->kind == MT_F_bin)
			len += ((const mt_str_t *)mt_rec_field(rec, f))->len;
		else if (f->kind == MT_F_u64s)
			len += 8 * (size_t)((const mt_u64s_t *)mt_rec_field(rec, f))->n;
	}
	return len;
}

void mt_rec_put(const mt_rec_desc_t *d, const void *rec,
		void (*emit)(void *arg, const void *p, size_t n), void *arg)
{
	unsigned char b[8];
	mt__put_u16(b, d->type);
	mt__put_u16(b + 2, 0);
	mt__put_u32(b + 4, (uint32_t)mt_rec_len(d, rec));
	emit(arg, b, 8);
	for (const mt_field_t *f = d->fields; f < d->fields + d->nfields; f++) {
		const void *v = mt_rec_field(rec, f);
		switch (f->kind) {
		case MT_F_u8: emit(arg, v, 1); break;
		case MT_F_u32:
		case MT_F_i32:
			mt__put_u32(b, *(const uint32_t *)v);
			emit(arg, b, 4);
			break;
		case MT_F_u64:
			mt__put_u64(b, *(const uint64_t *)v);
			emit(arg, b, 8);
			break;
		case MT_F_str:
		case MT_F_bin: {
			const mt_str_t *s = v;
			mt__put_u32(b, s->len);
			emit(arg, b, 4);
			if (s->len)
				emit(arg, s->p, s->len);
			break;
		}
		case MT_F_u64s: {
			const mt_u64s_t *a = v;
			mt__put_u32(b, a->n);
			emit(arg, b, 4);
			for (uint32_t i = 0; i < a->n; i++) {
				mt__put_u64(b, mt_u64s_at(a, i));
				emit(arg, b, 8);
			}
			break;
		}
		}
	}
}

int mt_rec_get(const mt_rec_desc_t *d, const unsigned char *p, size_t len, void *rec,
	       size_t *at, const mt_field_t **field, const char **why)
{
	size_t o = 0;
	memset(rec, 0, d->size);
	for (const mt_field_t *f = d->fields; f < d->fields + d->nfields; f++) {
		void *v = (char *)rec + f->off;
		size_t need = fixed_len[f->kind];
		if (len - o < need) {
			if (o == len && f->minor > 0)
				break; /* written by an older minor: the rest is 0 */
			*at = o, *field = f, *why = "too short";
			return -1;
		}
		const unsigned char *q = p + o;
		switch (f->kind) {
		case MT_F_u8: *(uint8_t *)v = q[0]; break;
		case MT_F_u32:
		case MT_F_i32: *(uint32_t *)v = mt__get_u32(q); break;
		case MT_F_u64: *(uint64_t *)v = mt__get_u64(q); break;
		case MT_F_str:
		case MT_F_bin: {
			uint32_t n = mt__get_u32(q);
			if (n > len - o - 4) {
				*at = o, *field = f, *why = "runs past the record";
				return -1;
			}
			*(mt_str_t *)v = (mt_str_t){(const char *)q + 4, n};
			need += n;
			break;
		}
		case MT_F_u64s: {
			uint32_t n = mt__get_u32(q);
			if (n > (len - o - 4) / 8) {
				*at = o, *field = f, *why = "runs past the record";
				return -1;
			}
			*(mt_u64s_t *)v = (mt_u64s_t){NULL, q + 4, n};
			need += 8 * (size_t)n;
			break;
		}
		}
		o += need;
	}
	return 0;
}
