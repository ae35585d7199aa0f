/* The lossless coder's stream of format 7, in one compiled pass (``raster.py`` is its Python face;
 * ``_kernels.pyx`` wraps these functions).
 *
 * Pixels go in raster order, image by image, the planes of a pixel together; each pixel's
 * neighbourhood, CALIC's prediction, the weighted predictor, the context tree's walk, the residual's
 * hybrid-integer token, its adaptive table and the rANS coder are all here, so the work per pixel
 * is a few hundred instructions and no Python call. The arithmetic is the numpy definitions'
 * (``predict.py``, ``context_tree.py``, ``weighted.py``, ``hybrid.py``, ``adaptive.py``), integers
 * only, so every machine codes the same stream.
 *
 * The rANS coder is constriction's stack coder exactly (64-bit state, 32-bit words, 24-bit
 * precision, the same renormalization and flush), so a stream can pass between it and constriction
 * mid-way: the chunk's form and own tree are coded by constriction before this part, its end
 * marker after. The tests hold the two coders to the same words.
 *
 * The planes are uint16 (every form's values are below 2^16). Only the last three rows of each
 * plane's state are kept (what the neighbourhood reaches), so the memory is the image itself plus
 * 8 bytes per coded symbol while encoding (rANS codes backwards: the symbols
 * are gathered, then pushed in reverse).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RS_PROPS 21   /* context_tree.OWN_PROPERTIES */
#define RS_PREDICTORS 5 /* context_tree.PREDICTORS */
#define RS_PRECISION 24
#define RS_MAX_SYMBOLS 256
#define RS_BLOCK (1 << 20) /* entries per block of the encoder's gathered symbols */

enum { RS_OK = 0, RS_NO_MEMORY = 1, RS_DAMAGED = 2, RS_TOO_LARGE = 3 };
enum { RS_ENCODE = 0, RS_DECODE = 1, RS_COUNT = 2 };

typedef struct {
    const int64_t *nodes;     /* (nodes, 4): property, threshold, left, right */
    const int16_t *leaf;      /* per node: its leaf number, -1 inner */
    const int8_t *predictor;  /* per leaf: context_tree.PREDICTORS */
    int64_t leaves;
    int uses_wp, predicts;
    int64_t n, k, h, w;       /* images, planes per image, rows, columns */
    const int64_t *top, *plane_id, *scale; /* per plane: largest value, the tree's plane, skew scale */
    int64_t step;             /* 2K + 1: near-lossless step, 1 lossless */
    const int64_t *thresholds; /* predict.SKEW_THRESHOLDS (6) */
    const int64_t *blend;     /* predict.BLEND (3 x 7) */
    const int64_t *max_weights; /* weighted.MAX_WEIGHTS (4) */
    const int64_t *pc;        /* weighted.P1C, P2C, P3C */
    int64_t extra;            /* weighted.EXTRA */
    int64_t t, direct_bits, msb; /* tokens per sign, hybrid.DIRECT_BITS, hybrid.MSB */
} rs_setup;

typedef struct {
    int64_t S;                /* 2T: the signed tokens, then the escape (never coded) */
    int64_t *counts;          /* (leaves, S) */
    int64_t *total, *fresh;   /* per leaf: sum of counts; weight added since its table was made */
    uint32_t *cum;            /* (leaves, S + 1): each leaf's table now, cumulative */
    int64_t weight, refresh, halve_at;
} rs_tables;

typedef struct {
    uint64_t state;
    uint32_t *words;          /* encoder: the stream so far; decoder: what is left to read */
    int64_t size, capacity;
    uint64_t **blocks;        /* the encoder's gathered (start << 32 | frequency), in order */
    int64_t entries, nblocks;
} rs_coder;

typedef struct {
    int32_t *r, *e, *we, *wt; /* rings of 3 rows per plane: values, residual magnitudes, WP's
                                 four sub-prediction errors and its true error */
    int64_t w3;
} rs_rings;

typedef struct {
    int64_t calic, pred, wp, wp_raw, leaf;
    int64_t sub[4];
    int64_t props[RS_PROPS];
} rs_pixel;

static inline int64_t rs_abs(int64_t v) { return v < 0 ? -v : v; }
static inline int64_t rs_clip(int64_t v, int64_t top) { return v < 0 ? 0 : (v > top ? top : v); }

static inline int64_t rs_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
    return q;
}

static inline int64_t rs_log2(int64_t x) { /* floor(log2 x), x >= 1 */
    return 63 - __builtin_clzll((uint64_t)x);
}

/* 2^24 / (i + 1): weighted.DIVISION; the weighted predictor's indices are below 64 (a table look-up
 * instead of five divisions a pixel) */
static const int64_t RS_DIVISION[64] = {
    16777216, 8388608, 5592405, 4194304, 3355443, 2796202, 2396745, 2097152, 1864135, 1677721,
    1525201, 1398101, 1290555, 1198372, 1118481, 1048576, 986895, 932067, 883011, 838860,
    798915, 762600, 729444, 699050, 671088, 645277, 621378, 599186, 578524, 559240, 541200,
    524288, 508400, 493447, 479349, 466033, 453438, 441505, 430185, 419430, 409200, 399457,
    390167, 381300, 372827, 364722, 356962, 349525, 342392, 335544, 328965, 322638, 316551,
    310689, 305040, 299593, 294337, 289262, 284359, 279620, 275036, 270600, 266305, 262144};

static inline int64_t rs_division(int64_t i) {
    return i < 64 ? RS_DIVISION[i] : ((int64_t)1 << 24) / (i + 1);
}

/* ---- rANS, constriction's stack coder ---- */

static int rs_push_word(rs_coder *c, uint32_t word) {
    if (c->size == c->capacity) {
        int64_t capacity = c->capacity ? 2 * c->capacity : 1024;
        uint32_t *grown = (uint32_t *)realloc(c->words, (size_t)capacity * sizeof(uint32_t));
        if (!grown) return RS_NO_MEMORY;
        c->words = grown;
        c->capacity = capacity;
    }
    c->words[c->size++] = word;
    return RS_OK;
}

static int rs_gather(rs_coder *c, uint32_t start, uint32_t freq) {
    int64_t block = c->entries / RS_BLOCK;
    if (block == c->nblocks) {
        uint64_t **grown = (uint64_t **)realloc(c->blocks, (size_t)(block + 1) * sizeof(uint64_t *));
        if (!grown) return RS_NO_MEMORY;
        c->blocks = grown;
        c->blocks[block] = (uint64_t *)malloc(RS_BLOCK * sizeof(uint64_t));
        if (!c->blocks[block]) return RS_NO_MEMORY;
        c->nblocks = block + 1;
    }
    c->blocks[block][c->entries % RS_BLOCK] = ((uint64_t)start << 32) | freq;
    c->entries++;
    return RS_OK;
}

static int rs_push_gathered(rs_coder *c) {
    for (int64_t m = c->entries - 1; m >= 0; m--) {
        uint64_t entry = c->blocks[m / RS_BLOCK][m % RS_BLOCK];
        uint64_t start = entry >> 32, freq = entry & 0xffffffffu;
        if ((c->state >> (64 - RS_PRECISION)) >= freq) {
            if (rs_push_word(c, (uint32_t)c->state)) return RS_NO_MEMORY;
            c->state >>= 32;
        }
        c->state = ((c->state / freq) << RS_PRECISION) | ((c->state % freq) + start);
    }
    return RS_OK;
}

/* Continue the stream of words constriction's get_compressed gives: the bulk, then the state's low
 * and high words (one word if the state fits in 32 bits, which it does only when the bulk is
 * empty). */
static int rs_take(rs_coder *c, const uint32_t *words, int64_t m) {
    memset(c, 0, sizeof(rs_coder));
    c->capacity = m + 1024;
    c->words = (uint32_t *)malloc((size_t)c->capacity * sizeof(uint32_t));
    if (!c->words) return RS_NO_MEMORY;
    if (m) memcpy(c->words, words, (size_t)m * sizeof(uint32_t));
    if (m == 1) {
        c->state = words[0];
        m = 0;
    } else if (m >= 2) {
        c->state = ((uint64_t)words[m - 1] << 32) | words[m - 2];
        m -= 2;
    }
    c->size = m;
    return RS_OK;
}

static void rs_release(rs_coder *c) {
    for (int64_t b = 0; b < c->nblocks; b++) free(c->blocks[b]);
    free(c->blocks);
    free(c->words);
    memset(c, 0, sizeof(rs_coder));
}

static int rs_flush(rs_coder *c) {
    if (c->state && rs_push_word(c, (uint32_t)c->state)) return RS_NO_MEMORY;
    if ((c->state >> 32) && rs_push_word(c, (uint32_t)(c->state >> 32))) return RS_NO_MEMORY;
    return RS_OK;
}

static inline void rs_advance(rs_coder *c, uint64_t start, uint64_t freq) {
    c->state = freq * (c->state >> RS_PRECISION) + (c->state & ((1u << RS_PRECISION) - 1)) - start;
    if (c->state < ((uint64_t)1 << 32) && c->size > 0) c->state = (c->state << 32) | c->words[--c->size];
}

static inline uint64_t rs_slot(const rs_coder *c) { return c->state & ((1u << RS_PRECISION) - 1); }

/* ---- the adaptive tables (adaptive.py) ---- */

/* floor(a / d) of a < 2^63, d >= 1, from r = floor(2^64 / d) when there is a 128-bit product: a
 * multiply and a correction instead of a division (a leaf's table is remade often, S values at a
 * time). Exact either way, so every build codes the same tables. */
static inline uint64_t rs_divide(uint64_t a, uint64_t d, uint64_t r) {
#if defined(__SIZEOF_INT128__)
    uint64_t q = (uint64_t)(((unsigned __int128)a * r) >> 64);
    while ((q + 1) * d <= a) q++;
    return q;
#else
    (void)r;
    return a / d;
#endif
}

static void rs_remake(rs_tables *t, int64_t leaf) {
    int64_t S = t->S, *counts = t->counts + leaf * S, f[RS_MAX_SYMBOLS], sum = 0, best = 0;
    uint32_t *cum = t->cum + leaf * (S + 1);
    if (t->total[leaf] > t->halve_at) {
        int64_t total = 0;
        for (int64_t s = 0; s < S; s++) {
            counts[s] = (counts[s] + 1) >> 1;
            total += counts[s];
        }
        t->total[leaf] = total;
    }
    uint64_t d = (uint64_t)t->total[leaf], k = ((uint64_t)1 << RS_PRECISION) - (uint64_t)S;
    uint64_t r = d > 1 ? ~(uint64_t)0 / d : 0; /* floor((2^64 - 1) / d): floor(2^64 / d) or 1 less */
    for (int64_t s = 0; s < S; s++) {
        f[s] = (int64_t)(d > 1 ? rs_divide((uint64_t)counts[s] * k, d, r) : (uint64_t)counts[s] * k) + 1;
        sum += f[s];
        if (f[s] > f[best]) best = s;
    }
    f[best] += ((int64_t)1 << RS_PRECISION) - sum;
    cum[0] = 0;
    for (int64_t s = 0; s < S; s++) cum[s + 1] = cum[s] + (uint32_t)f[s];
    t->fresh[leaf] = 0;
}

static inline void rs_count(rs_tables *t, int64_t leaf, int64_t symbol) {
    t->counts[leaf * t->S + symbol] += t->weight;
    t->total[leaf] += t->weight;
    t->fresh[leaf] += t->weight;
    if (t->fresh[leaf] * t->refresh >= t->total[leaf]) rs_remake(t, leaf);
}

/* ---- a pixel's neighbourhood ---- */

static inline int32_t *rs_row(int32_t *base, const rs_rings *g, int64_t slot, int64_t y) {
    return base + (slot * 3 + (y + 3) % 3) * g->w3;
}

static void rs_weighted(const rs_setup *s, const rs_rings *g, int64_t c, int64_t y, int64_t px,
                        int64_t a, int64_t b, int64_t d, rs_pixel *p) {
    const int32_t *t0 = rs_row(g->wt, g, c, y), *t1 = rs_row(g->wt, g, c, y - 1);
    int64_t x = s->extra, west = a << x, north = b << x, ne = d << x;
    int64_t te_n = t1[px], te_ne = t1[px + 1], te_nw = t1[px - 1], te_w = t0[px - 1];
    int64_t w[4], total = 0, acc = 0, v, shift, best;
    p->sub[0] = west + ne - north;
    p->sub[1] = north - (((te_w + te_n + te_ne) * s->pc[0]) >> 5);
    p->sub[2] = west - (((te_w + te_n + te_nw) * s->pc[1]) >> 5);
    p->sub[3] = north - (((te_nw + te_n + te_ne) * s->pc[2]) >> 5);
    for (int q = 0; q < 4; q++) {
        const int32_t *e0 = rs_row(g->we, g, c * 4 + q, y), *e1 = rs_row(g->we, g, c * 4 + q, y - 1);
        int64_t sum = (int64_t)e1[px] + e1[px + 1] + e1[px - 1] + e0[px - 1] + e0[px - 2];
        shift = rs_log2(sum + 1) - 5;
        if (shift < 0) shift = 0;
        w[q] = 4 + ((s->max_weights[q] * rs_division(sum >> shift)) >> shift);
        total += w[q];
    }
    shift = rs_log2(total) - 4;
    total = 0;
    for (int q = 0; q < 4; q++) {
        w[q] >>= shift;
        total += w[q];
        acc += p->sub[q] * w[q];
    }
    v = (((total >> 1) - 1 + acc) * rs_division(total - 1)) >> 24;
    if (((te_n ^ te_w) | (te_n ^ te_nw)) <= 0) {
        int64_t low = west < ne ? west : ne, high = west > ne ? west : ne;
        low = low < north ? low : north;
        high = high > north ? high : north;
        v = v < low ? low : (v > high ? high : v);
    }
    p->wp_raw = v;
    p->wp = rs_clip((v + ((1 << x >> 1) - 1)) >> x, s->top[c]);
    best = te_w;
    if (rs_abs(te_n) > rs_abs(best)) best = te_n;
    if (rs_abs(te_nw) > rs_abs(best)) best = te_nw;
    if (rs_abs(te_ne) > rs_abs(best)) best = te_ne;
    p->props[20] = best;
}

/* CALIC's prediction, the tree's properties, the weighted predictor, the leaf and its prediction
 * of plane c at (y, x). */
static void rs_context(const rs_setup *s, const rs_rings *g, int64_t c, int64_t y, int64_t x,
                       int walk, rs_pixel *p) {
    int64_t px = x + 2, step = s->step, top = s->top[c];
    const int32_t *r0 = rs_row(g->r, g, c, y), *r1 = rs_row(g->r, g, c, y - 1), *r2 = rs_row(g->r, g, c, y - 2);
    const int32_t *e0 = rs_row(g->e, g, c, y), *e1 = rs_row(g->e, g, c, y - 1);
    int64_t a = r0[px - 1], aa = r0[px - 2], b = r1[px], cc = r1[px - 1], d = r1[px + 1];
    int64_t bb = r2[px], bd = r2[px + 1], *q = p->props;
    int64_t skew = (rs_abs(a - cc) + rs_abs(b - bb) + rs_abs(d - bd))
                   - (rs_abs(a - aa) + rs_abs(b - cc) + rs_abs(b - d));
    int bin = 0;
    for (int i = 0; i < 6; i++) bin += skew >= s->thresholds[i] * s->scale[c];
    int64_t gv = (s->blend[bin] * (16 * (a + b) + 8 * (d - cc)) + s->blend[7 + bin] * 32 * a
                  + s->blend[14 + bin] * 32 * b) >> 2;
    p->calic = rs_clip((gv + 16) >> 5, top);
    int64_t gr[6] = {rs_abs(d - b) + rs_abs(b - cc) + rs_abs(cc - a), a - cc, b - cc, d - b, a - aa, b - bb};
    if (step > 1)
        for (int i = 0; i < 6; i++) gr[i] = rs_floordiv(gr[i], step);
    q[0] = p->calic; q[1] = a; q[2] = b; q[3] = cc; q[4] = d;
    q[5] = e0[px - 1]; q[6] = e1[px]; q[7] = e1[px - 1]; q[8] = e1[px + 1];
    q[9] = y; q[10] = x; q[11] = gr[0]; q[12] = q[5] + q[6];
    q[13] = gr[1]; q[14] = gr[2]; q[15] = gr[3]; q[16] = gr[4]; q[17] = gr[5];
    q[18] = s->plane_id[c];
    q[19] = c > 0 ? rs_row(g->e, g, c - 1, y)[px] : 0;
    q[20] = 0;
    p->wp = p->calic;
    if (s->uses_wp) rs_weighted(s, g, c, y, px, a, b, d, p);
    if (!walk) return;
    int64_t node = 0;
    while (s->leaf[node] < 0) {
        const int64_t *nd = s->nodes + 4 * node;
        node = nd[2 + (q[nd[0]] > nd[1])];
    }
    p->leaf = s->leaf[node];
    switch (s->predictor[p->leaf]) {
    case 1: p->pred = a; break;
    case 2: p->pred = b; break;
    case 3: p->pred = rs_clip(a + b - cc, top); break;
    case 4: p->pred = s->uses_wp ? p->wp : p->calic; break;
    default: p->pred = p->calic;
    }
}

/* Record plane c's value v at (y, x) and its residual's magnitude. */
static void rs_record(const rs_setup *s, const rs_rings *g, int64_t c, int64_t y, int64_t x,
                      const rs_pixel *p, int64_t v, int64_t magnitude) {
    int64_t px = x + 2;
    rs_row(g->r, g, c, y)[px] = (int32_t)v;
    rs_row(g->e, g, c, y)[px] = (int32_t)(s->predicts ? rs_abs(v - p->calic) : magnitude);
    if (!s->uses_wp) return;
    int64_t vv = v << s->extra, rounding = (1 << s->extra >> 1) - 1;
    rs_row(g->wt, g, c, y)[px] = (int32_t)(p->wp_raw - vv);
    for (int q = 0; q < 4; q++)
        rs_row(g->we, g, c * 4 + q, y)[px] = (int32_t)((rs_abs(p->sub[q] - vv) + rounding) >> s->extra);
}

static int rs_rings_make(rs_rings *g, const rs_setup *s) {
    g->w3 = s->w + 3;
    size_t row = (size_t)(3 * s->k * g->w3);
    g->r = (int32_t *)calloc(row * 7, sizeof(int32_t));
    if (!g->r) return RS_NO_MEMORY;
    g->e = g->r + row;
    g->wt = g->e + row;
    g->we = g->wt + row; /* 4 rows' worth: one per sub-prediction */
    return RS_OK;
}

/* ---- hybrid integers (hybrid.py) ---- */

static inline void rs_token(const rs_setup *s, int64_t u, int64_t *token, int64_t *raw, int64_t *bits) {
    if (u < ((int64_t)1 << s->direct_bits)) {
        *token = u; *raw = 0; *bits = 0;
        return;
    }
    int64_t n = rs_log2(u), extra = n - s->msb;
    *token = ((int64_t)1 << s->direct_bits) + (n - s->direct_bits) * ((int64_t)1 << s->msb)
             + ((u >> extra) & (((int64_t)1 << s->msb) - 1));
    *raw = u & (((int64_t)1 << extra) - 1);
    *bits = extra;
}

static inline int64_t rs_raw_bits(const rs_setup *s, int64_t token) {
    int64_t direct = (int64_t)1 << s->direct_bits;
    return token < direct ? 0 : (token - direct) / ((int64_t)1 << s->msb) + s->direct_bits - s->msb;
}

static inline int64_t rs_magnitude(const rs_setup *s, int64_t token, int64_t raw, int64_t bits) {
    int64_t direct = (int64_t)1 << s->direct_bits, m = (int64_t)1 << s->msb;
    if (token < direct) return token;
    return ((m | ((token - direct) & (m - 1))) << bits) + raw;
}

/* ---- one value: encoded, decoded or counted ---- */

static int rs_encode_value(const rs_setup *s, rs_tables *t, rs_coder *co, const rs_pixel *p,
                           int64_t c, uint16_t *at, int64_t *magnitude) {
    int64_t res = *at - p->pred, q = s->step == 1 ? res : rs_floordiv(2 * res + s->step, 2 * s->step);
    int64_t token, raw, bits, symbol;
    *magnitude = rs_abs(q);
    rs_token(s, *magnitude, &token, &raw, &bits);
    if (token >= s->t) return RS_TOO_LARGE;
    symbol = (q < 0 ? -token : token) + s->t - 1;
    const uint32_t *cum = t->cum + p->leaf * (t->S + 1);
    if (rs_gather(co, cum[symbol], cum[symbol + 1] - cum[symbol])) return RS_NO_MEMORY;
    if (bits && rs_gather(co, (uint32_t)(raw << (RS_PRECISION - bits)), 1u << (RS_PRECISION - bits)))
        return RS_NO_MEMORY;
    if (s->step > 1) *at = (uint16_t)rs_clip(p->pred + q * s->step, s->top[c]);
    rs_count(t, p->leaf, symbol);
    return RS_OK;
}

static int rs_decode_value(const rs_setup *s, rs_tables *t, rs_coder *co, const rs_pixel *p,
                           int64_t c, uint16_t *at, int64_t *magnitude) {
    const uint32_t *cum = t->cum + p->leaf * (t->S + 1);
    uint32_t slot = (uint32_t)rs_slot(co);
    int64_t lo = 0, hi = t->S, token, bits, raw = 0, q;
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) >> 1;
        if (cum[mid] <= slot) lo = mid; else hi = mid;
    }
    if (lo == t->S - 1) return RS_DAMAGED; /* the escape: never coded */
    rs_advance(co, cum[lo], cum[lo + 1] - cum[lo]);
    token = rs_abs(lo - (s->t - 1));
    bits = rs_raw_bits(s, token);
    if (bits) {
        uint64_t shift = RS_PRECISION - bits;
        raw = (int64_t)(rs_slot(co) >> shift);
        rs_advance(co, (uint64_t)raw << shift, (uint64_t)1 << shift);
    }
    *magnitude = rs_magnitude(s, token, raw, bits);
    q = lo < s->t - 1 ? -*magnitude : *magnitude;
    *at = (uint16_t)rs_clip(p->pred + q * s->step, s->top[c]);
    rs_count(t, p->leaf, lo);
    return RS_OK;
}

/* Encode, decode or count (per leaf, the signed tokens) the planes (n * k, h, w): pixels in raster
 * order, a pixel's planes together. */
static int rs_code(const rs_setup *s, rs_tables *t, rs_coder *co, uint16_t *planes, int mode,
                   int64_t *counts) {
    rs_rings g;
    rs_pixel p;
    int status = rs_rings_make(&g, s);
    if (status) return status;
    for (int64_t i = 0; i < s->n && !status; i++) {
        memset(g.r, 0, (size_t)(21 * s->k * g.w3) * sizeof(int32_t));
        for (int64_t y = 0; y < s->h && !status; y++)
            for (int64_t x = 0; x < s->w && !status; x++)
                for (int64_t c = 0; c < s->k; c++) {
                    uint16_t *at = planes + ((i * s->k + c) * s->h + y) * s->w + x;
                    int64_t magnitude;
                    rs_context(s, &g, c, y, x, 1, &p);
                    if (mode == RS_ENCODE) status = rs_encode_value(s, t, co, &p, c, at, &magnitude);
                    else if (mode == RS_DECODE) status = rs_decode_value(s, t, co, &p, c, at, &magnitude);
                    else {
                        int64_t token, raw, bits, res = *at - p.pred;
                        magnitude = rs_abs(res);
                        rs_token(s, magnitude, &token, &raw, &bits);
                        if (token >= s->t) { status = RS_TOO_LARGE; break; }
                        counts[p.leaf * (2 * s->t - 1) + (res < 0 ? -token : token) + s->t - 1]++;
                    }
                    if (status) break;
                    rs_record(s, &g, c, y, x, &p, *at, magnitude);
                }
    }
    free(g.r);
    return status;
}

/* The properties (RS_PROPS, m) and each predictor's signed token (RS_PREDICTORS, m) of the values
 * at the sorted positions ``picked`` (in coding order) of lossless planes, what an image's own tree
 * is grown on; and the counts (leaves, 2T - 1) of every value's signed token in each leaf of the
 * setup's tree, which must predict as CALIC does (a model's tree). Residual magnitudes are
 * CALIC's. */
static int rs_sample(const rs_setup *s, const uint16_t *planes, const int64_t *picked, int64_t m,
                     int32_t *props, int32_t *tokens, int64_t *counts) {
    rs_rings g;
    rs_pixel p;
    int64_t at = 0, j = 0, token, raw, bits;
    if (rs_rings_make(&g, s)) return RS_NO_MEMORY;
    for (int64_t i = 0; i < s->n; i++) {
        memset(g.r, 0, (size_t)(21 * s->k * g.w3) * sizeof(int32_t));
        for (int64_t y = 0; y < s->h; y++)
            for (int64_t x = 0; x < s->w; x++)
                for (int64_t c = 0; c < s->k; c++, at++) {
                    int64_t v = planes[((i * s->k + c) * s->h + y) * s->w + x];
                    rs_context(s, &g, c, y, x, 1, &p);
                    rs_token(s, rs_abs(v - p.calic), &token, &raw, &bits);
                    if (token >= s->t) {
                        free(g.r);
                        return RS_TOO_LARGE;
                    }
                    counts[p.leaf * (2 * s->t - 1) + (v < p.calic ? -token : token) + s->t - 1]++;
                    if (j < m && picked[j] == at) {
                        int64_t *q = p.props, by[RS_PREDICTORS] = {p.calic, q[1], q[2], rs_clip(q[1] + q[2] - q[3], s->top[c]), p.wp};
                        for (int f = 0; f < RS_PROPS; f++) props[f * m + j] = (int32_t)q[f];
                        for (int f = 0; f < RS_PREDICTORS; f++) {
                            rs_token(s, rs_abs(v - by[f]), &token, &raw, &bits);
                            tokens[f * m + j] = (int32_t)(v < by[f] ? -token : token);
                        }
                        j++;
                    }
                    rs_record(s, &g, c, y, x, &p, v, rs_abs(v - p.calic));
                }
    }
    free(g.r);
    return RS_OK;
}
