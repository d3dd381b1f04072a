/* kefuctl_table: the aligned text tables of `stat` and `report`. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kf_util.h"


void kefuctl_table_add(kefuctl_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rows = kf_xrealloc(t->rows, t->cap * sizeof(*t->rows));
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->rows[t->nrows][i] = kf_xstrdup(cells[i] ? cells[i] : "-");
    t->nrows++;
}

/* East Asian wide and fullwidth code points take two terminal columns. */
static bool s_wide(unsigned cp)
{
    return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F) ||
           (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
           (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
           (cp >= 0x20000 && cp <= 0x3FFFD);
}

/* Display width in terminal columns (bytes when s is not UTF-8). */
static size_t s_width(const char *s)
{
    size_t n = strlen(s), w = 0;
    if (!kf_utf8_valid(s, n))
        return n;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned cp = *p, extra = 0;
        if (cp >= 0xF0)
            cp &= 0x07, extra = 3;
        else if (cp >= 0xE0)
            cp &= 0x0F, extra = 2;
        else if (cp >= 0xC0)
            cp &= 0x1F, extra = 1;
        for (p++; extra > 0; extra--, p++)
            cp = (cp << 6) | (*p & 0x3F);
        w += s_wide(cp) ? 2 : 1;
    }
    return w;
}

void kefuctl_table_print(kefuctl_table_t *t, FILE *f)
{
    size_t w[KEFUCTL_TABLE_MAXCOLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            if (s_width(t->rows[r][c]) > w[c])
                w[c] = s_width(t->rows[r][c]);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->rows[r][c];
            size_t pad = w[c] - s_width(s);
            bool last = c + 1 == t->ncols;
            if (t->align[c] == 'r')
                fprintf(f, "%*s%s", (int)pad, "", s);
            else
                fprintf(f, "%s%*s", s, last ? 0 : (int)pad, "");
            fputs(last ? "\n" : "  ", f);
        }
    }
}

void kefuctl_table_free(kefuctl_table_t *t)
{
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            free(t->rows[r][c]);
    free(t->rows);
}
