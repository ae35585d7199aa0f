# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The lossless coder's per-pixel loops, compiled (Cython, built with the package; loaded and
checked by ``kernels.py``): integers only, so every machine gives the leaves and predictions of the
numpy definitions in ``predict.py``, ``context_tree.py``, ``hybrid.py`` and ``weighted.py`` (the
tests hold them to it). The constants of those definitions are passed in, not copied here.

numpy spends about twenty passes over memory per pixel on a context tree's walk (a gather and a
compare per level) and on the twenty properties it reads; here each pixel is one pass, and the
planes are stored pixel-major ((H + 2) * (W + 3), n: ``predict.pixel_major``): a pixel's
neighbours in all images of a chunk are contiguous runs, where image-major storage made every
pixel a cache miss.

Signed right shifts are arithmetic here as in numpy (what gcc, clang and MSVC do); floor division of
negative numbers goes through ``_floordiv`` (C's ``/`` truncates).
"""

import numpy as np

from libc.math cimport INFINITY
from libc.string cimport memset
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

ctypedef fused prop_t:
    int32_t
    int64_t

cdef enum:
    LANES = 4  # pixels walked down the tree together: their loads overlap instead of waiting in turn
    PROPS = 21  # context_tree.OWN_PROPERTIES: a compile-time size, checked by leaves_at

# The version stamp: setup.py defines KERNELS_SOURCE as the SHA-256 of this file, and
# ``kernels.compiled`` refuses a build whose stamp is not the source's (a stale build).
cdef extern from *:
    """
    #ifndef KERNELS_SOURCE
    #define KERNELS_SOURCE "unknown"
    #endif
    """
    const char* KERNELS_SOURCE

SOURCE_SHA256 = KERNELS_SOURCE.decode("ascii")
# What leaves_at computes, in order: ``context_tree.OWN_PROPERTIES`` (the tests hold them equal).
PROPERTIES = ("prediction", "a", "b", "c", "d", "|e_a|", "|e_b|", "|e_c|", "|e_d|", "row", "column",
              "activity", "|e_a|+|e_b|", "a-c", "b-c", "d-b", "a-aa", "b-bb", "plane", "|e_plane|",
              "WP max error")
# What own_prediction's predictor numbers mean: ``context_tree.PREDICTORS``.
PREDICTORS = ("CALIC", "W", "N", "W+N-NW", "WP")


cdef inline int64_t _abs(int64_t v) noexcept nogil:
    return -v if v < 0 else v


cdef inline int64_t _raw_bit_count(int64_t token, int64_t direct_bits, int64_t msb) noexcept nogil:
    """Raw bits after a hybrid-integer token >= 2^direct_bits: ``hybrid.raw_bits_of``."""
    return (token - (1 << direct_bits)) // (1 << msb) + direct_bits - msb


cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a / b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


def walk(const int64_t[:, ::1] nodes, const int16_t[::1] leaf, const prop_t[:, ::1] props):
    """Leaf index (int16) of each column of ``props`` (P, k), ``nodes`` and ``leaf`` as ``leaves_at``'s:
    ``context_tree.Tree.apply``."""
    cdef Py_ssize_t k = props.shape[1], j
    cdef int64_t node
    out = np.empty(k, np.int16)
    cdef int16_t[::1] o = out
    with nogil:
        for j in range(k):
            node = 0
            while leaf[node] < 0:
                node = nodes[node, 2 + (props[nodes[node, 0], j] > nodes[node, 1])]
            o[j] = leaf[node]
    return out


cdef inline int64_t _calic(const int32_t[:, ::1] r, Py_ssize_t p, Py_ssize_t i,
                           const int64_t[::1] off, const int64_t* bounds, const int64_t* blend,
                           int64_t top) noexcept nogil:
    cdef int64_t a = r[p + off[0], i], b = r[p + off[1], i], c = r[p + off[2], i]
    cdef int64_t d = r[p + off[3], i], aa = r[p + off[4], i], bb = r[p + off[5], i]
    cdef int64_t bd = r[p + off[6], i]
    cdef int64_t skew = ((_abs(a - c) + _abs(b - bb) + _abs(d - bd))
                         - (_abs(a - aa) + _abs(b - c) + _abs(b - d)))
    # searchsorted "right" over the six scaled thresholds: the skew's bin
    cdef int s = ((skew >= bounds[0]) + (skew >= bounds[1]) + (skew >= bounds[2])
                  + (skew >= bounds[3]) + (skew >= bounds[4]) + (skew >= bounds[5]))
    cdef int64_t g = (blend[s] * (16 * (a + b) + 8 * (d - c)) + blend[7 + s] * 32 * a
                      + blend[14 + s] * 32 * b) >> 2
    g = (g + 16) >> 5
    return 0 if g < 0 else (top if g > top else g)


def calic(const int32_t[:, ::1] r, const int64_t[::1] here, const int64_t[::1] offsets,
          int64_t top, int64_t scale, const int64_t[::1] thresholds, const int64_t[:, ::1] blend):
    """CALIC's prediction (n, k) int64 of the pixels at ``here`` of padded planes r stored
    pixel-major (L, n), the skew ``thresholds`` (6) times ``scale`` and the ``blend`` (3, 7) of
    ``predict.SKEW_THRESHOLDS`` and ``BLEND``: ``predict.calic``."""
    cdef Py_ssize_t n = r.shape[1], k = here.shape[0], i, j
    cdef int64_t bounds[6]
    cdef int64_t weights[21]
    if thresholds.shape[0] != 6 or blend.shape[0] != 3 or blend.shape[1] != 7:
        raise ValueError("calic: 6 skew thresholds and a (3, 7) blend expected")
    for i in range(6):
        bounds[i] = thresholds[i] * scale
    for i in range(21):
        weights[i] = blend[i // 7, i % 7]
    out = np.empty((n, k), np.int64)
    cdef int64_t[:, ::1] o = out
    with nogil:
        for j in range(k):
            for i in range(n):
                o[i, j] = _calic(r, here[j], i, offsets, bounds, weights, top)
    return out


def leaves_at(const int32_t[:, ::1] r, const int32_t[:, ::1] e, const int32_t[:, ::1] previous,
              const int64_t[:, ::1] extra, const int64_t[::1] here, const int64_t[::1] offsets,
              const int64_t[:, ::1] pred, int64_t plane, int64_t step, const int64_t[:, ::1] nodes,
              const int16_t[::1] leaf, Py_ssize_t properties):
    """Leaf (int16, n * k, image by image) of each pixel at ``here`` of padded planes r stored
    pixel-major (L, n), walking the tree over ``context_tree.properties`` computed pixel by pixel: ``e``
    the residual magnitudes so far (L, n), ``previous`` the plane before's ((0, 0): none), ``extra``
    (n, k) an own tree's weighted-predictor property ((0, 0): none), ``pred`` (n, k) CALIC's;
    ``nodes`` (feature, threshold, left, right) per node, ``leaf`` its leaf number or -1;
    ``properties``: len(context_tree.OWN_PROPERTIES), which must be PROPS."""
    cdef Py_ssize_t n = r.shape[1], k = here.shape[0], i, i0, j, w, lanes, p, q, block
    cdef int64_t props[LANES * PROPS]
    cdef int64_t at[LANES]
    cdef int64_t a, b, c, d, ea, eb, g0, g1, g2, g3, g4, g5, y, x, node
    cdef int64_t width = -offsets[1]
    cdef bint has_previous = previous.shape[0] > 0, has_extra = extra.shape[0] > 0, walking
    if properties != PROPS:
        raise ValueError(f"the compiled loops compute {PROPS} properties, the context tree has "
                         f"{properties}: rebuild them (pip install -e . or "
                         "python setup.py build_ext --inplace)")
    out = np.empty(n * k, np.int16)
    cdef int16_t[::1] o = out
    with nogil:
        for w in range(LANES * PROPS):
            props[w] = 0
        for j in range(k):
            p = here[j]
            y, x = p // width - 2, p % width - 2
            for block in range((n + LANES - 1) // LANES):
                i0 = block * LANES
                lanes = min(LANES, n - i0)
                for w in range(lanes):
                    i, q = i0 + w, PROPS * w
                    a, b, c, d = r[p + offsets[0], i], r[p + offsets[1], i], r[p + offsets[2], i], r[p + offsets[3], i]
                    ea, eb = e[p + offsets[0], i], e[p + offsets[1], i]
                    props[q], props[q + 1], props[q + 2], props[q + 3], props[q + 4] = pred[i, j], a, b, c, d
                    props[q + 5], props[q + 6], props[q + 7], props[q + 8] = ea, eb, e[p + offsets[2], i], e[p + offsets[3], i]
                    props[q + 9], props[q + 10], props[q + 12], props[q + 18] = y, x, ea + eb, plane
                    g0, g1, g2, g3 = _abs(d - b) + _abs(b - c) + _abs(c - a), a - c, b - c, d - b
                    g4, g5 = a - r[p + offsets[4], i], b - r[p + offsets[5], i]
                    if step > 1:  # near-lossless: gradients in steps
                        g0, g1, g2 = _floordiv(g0, step), _floordiv(g1, step), _floordiv(g2, step)
                        g3, g4, g5 = _floordiv(g3, step), _floordiv(g4, step), _floordiv(g5, step)
                    props[q + 11], props[q + 13], props[q + 14], props[q + 15], props[q + 16], props[q + 17] = g0, g1, g2, g3, g4, g5
                    props[q + 19] = previous[p, i] if has_previous else 0
                    props[q + 20] = extra[i, j] if has_extra else 0
                for w in range(LANES):
                    at[w] = 0
                walking = True
                while walking:  # a leaf's children are itself: lanes at leaves stay put while the others walk on
                    walking = False
                    for w in range(LANES):
                        node = at[w]
                        at[w] = nodes[node, 2 + (props[PROPS * w + nodes[node, 0]] > nodes[node, 1])]
                        walking = walking or leaf[at[w]] < 0
                for w in range(lanes):
                    o[(i0 + w) * k + j] = leaf[at[w]]
    return out


def count(int64_t[:, ::1] counts, int64_t[::1] fresh, const int16_t[::1] leaves, const int64_t[::1] signed,
          int64_t offset, int64_t weight, int64_t refresh):
    """Add ``weight`` to each leaf's count of its signed token (``signed + offset``) and to its weight
    added since its table was made; the leaves, ascending, whose added weight reached 1/``refresh`` of
    their total: ``adaptive.AdaptiveTables.update``."""
    cdef Py_ssize_t m, leaf, s, found = 0, width = counts.shape[1]
    cdef int64_t total
    touched_ = np.zeros(counts.shape[0], np.uint8)
    stale_ = np.empty(counts.shape[0], np.int64)
    cdef uint8_t[::1] touched = touched_
    cdef int64_t[::1] stale = stale_
    with nogil:
        for m in range(leaves.shape[0]):
            leaf = leaves[m]
            counts[leaf, signed[m] + offset] += weight
            fresh[leaf] += weight
            touched[leaf] = 1
        for leaf in range(counts.shape[0]):
            if touched[leaf]:
                total = 0
                for s in range(width):
                    total += counts[leaf, s]
                if fresh[leaf] * refresh >= total:
                    stale[found] = leaf
                    found += 1
    return stale_[:found]


def raw_bits(const int32_t[::1] signed, int64_t tokens, int64_t direct_bits, int64_t msb):
    """(positions of the symbols followed by raw bits, their bit counts less one as int16: the raw bits'
    table numbers), or a first position of -1 if a token is beyond ``tokens`` (a damaged stream):
    ``hybrid.raw_bits_of`` (``direct_bits``, ``msb``: hybrid.DIRECT_BITS and MSB)."""
    cdef Py_ssize_t m, found = 0
    cdef int64_t token, direct = 1 << direct_bits
    where_ = np.empty(signed.shape[0], np.int64)
    bits_ = np.empty(signed.shape[0], np.int16)
    cdef int64_t[::1] where = where_
    cdef int16_t[::1] bits = bits_
    with nogil:
        for m in range(signed.shape[0]):
            token = _abs(<int64_t>signed[m])
            if token >= tokens:
                where[0] = -1
                found = 1
                break
            if token >= direct:
                where[found] = m
                bits[found] = _raw_bit_count(token, direct_bits, msb) - 1
                found += 1
    return where_[:found], bits_[:found]


def reconstruct(int32_t[:, ::1] r, int32_t[:, ::1] e, const int64_t[::1] here, const int64_t[:, ::1] pred,
                const int64_t[:, ::1] calic, const int32_t[::1] signed, const int64_t[::1] sent,
                const int32_t[::1] raw, int64_t step, int64_t top, bint residual_of_calic, int64_t direct_bits,
                int64_t msb):
    """Write the pixels at ``here`` (n, k) into r and the magnitudes of their residuals into e (both
    pixel-major): each signed token (n * k) with its raw bits (``raw``, for the positions ``sent``) is a
    residual in steps added to ``pred``; ``residual_of_calic``: e holds CALIC's residual (an own tree's
    leaves may predict otherwise). Returns the pixels (n, k) int64: ``hybrid.magnitude_of``."""
    cdef Py_ssize_t n = pred.shape[0], k = pred.shape[1], i, j, m, s, p
    cdef int64_t token, magnitude, v, bits, direct = 1 << direct_bits
    extra_ = np.zeros(n * k, np.int64)
    values_ = np.empty((n, k), np.int64)
    cdef int64_t[::1] extra = extra_
    cdef int64_t[:, ::1] values = values_
    with nogil:
        for s in range(sent.shape[0]):
            extra[sent[s]] = raw[s]
        for i in range(n):
            for j in range(k):
                m = i * k + j
                token = _abs(<int64_t>signed[m])
                magnitude = token
                if token >= direct:
                    bits = _raw_bit_count(token, direct_bits, msb)
                    magnitude = (((1 << msb) | ((token - direct) & ((1 << msb) - 1))) << bits) + extra[m]
                v = pred[i, j] + (-magnitude if signed[m] < 0 else magnitude) * step
                v = 0 if v < 0 else (top if v > top else v)
                values[i, j] = v
                p = here[j]
                r[p, i] = <int32_t>v
                e[p, i] = <int32_t>(_abs(v - calic[i, j]) if residual_of_calic else magnitude)
    return values_


# JPEG XL's weighted predictor (``weighted.py``, libjxl's default header), on pixel-major planes.



cdef inline int64_t _log2(int64_t x) noexcept nogil:
    """floor(log2 x) of x >= 1."""
    cdef int64_t out = -1
    while x:
        x >>= 1
        out += 1
    return out


cdef inline int64_t _division(int64_t i) noexcept nogil:
    return (1 << 24) // (i + 1)


def wp_predict(const int32_t[:, ::1] r, const int32_t[:, :, ::1] errors, const int32_t[:, ::1] true_,
               const int64_t[::1] here, const int64_t[::1] offsets, int64_t top, int64_t[:, :, ::1] sub,
               int64_t[:, ::1] pred, const int64_t[::1] max_weights, const int64_t[::1] pc, int64_t extra):
    """(prediction 0..top, largest neighbouring true error), both (n, k) int64, of the pixels at ``here``
    of pixel-major planes r (L, n), from the predictor's memory ``errors`` (4, L, n) and ``true_`` (L, n);
    its sub-predictions and unrounded prediction are left in ``sub`` (4, n, k) and ``pred`` (n, k) for
    ``wp_update``; ``max_weights`` (4), ``pc`` (p1C, p2C, p3C) and ``extra`` (bits of precision) are
    ``weighted``'s: ``weighted.State.predict``."""
    cdef Py_ssize_t n = r.shape[1], k = here.shape[0], i, j, s, t
    cdef int64_t p, west, north, nw, ne, te_n, te_ne, te_nw, te_w, total, shift, x, acc, v, low, high, best
    cdef int64_t w[4]
    cdef int64_t around[5]
    out_ = np.empty((n, k), np.int64)
    largest_ = np.empty((n, k), np.int64)
    cdef int64_t[:, ::1] out = out_, largest = largest_
    cdef int64_t rounding = (1 << extra >> 1) - 1
    if max_weights.shape[0] != 4 or pc.shape[0] != 3:
        raise ValueError("wp_predict: 4 maximum weights and 3 correction factors expected")
    with nogil:
        for j in range(k):
            p = here[j]
            around[0], around[1], around[2], around[3], around[4] = (p + offsets[1], p + offsets[3], p + offsets[2],
                                                                     p + offsets[0], p + offsets[4])  # N, NE, NW, W, WW
            for i in range(n):
                west, north = <int64_t>r[around[3], i] << extra, <int64_t>r[around[0], i] << extra
                nw, ne = <int64_t>r[around[2], i] << extra, <int64_t>r[around[1], i] << extra
                te_n, te_ne, te_nw, te_w = true_[around[0], i], true_[around[1], i], true_[around[2], i], true_[around[3], i]
                sub[0, i, j] = west + ne - north
                sub[1, i, j] = north - (((te_w + te_n + te_ne) * pc[0]) >> 5)
                sub[2, i, j] = west - (((te_w + te_n + te_nw) * pc[1]) >> 5)
                sub[3, i, j] = north - (((te_nw + te_n + te_ne) * pc[2]) >> 5)
                total = 0
                for s in range(4):
                    x = 0
                    for t in range(5):
                        x += errors[s, around[t], i]
                    shift = _log2(x + 1) - 5
                    if shift < 0:
                        shift = 0
                    w[s] = 4 + ((max_weights[s] * _division(x >> shift)) >> shift)
                    total += w[s]
                shift = _log2(total) - 4
                total, acc = 0, 0
                for s in range(4):
                    w[s] >>= shift
                    total += w[s]
                    acc += sub[s, i, j] * w[s]
                v = (((total >> 1) - 1 + acc) * _division(total - 1)) >> 24
                if ((te_n ^ te_w) | (te_n ^ te_nw)) <= 0:
                    low, high = min(min(west, ne), north), max(max(west, ne), north)
                    v = low if v < low else (high if v > high else v)
                pred[i, j] = v
                v = (v + rounding) >> extra
                out[i, j] = 0 if v < 0 else (top if v > top else v)
                best = te_w  # the error of largest magnitude, the first of equals (W, N, NW, NE)
                if _abs(te_n) > _abs(best):
                    best = te_n
                if _abs(te_nw) > _abs(best):
                    best = te_nw
                if _abs(te_ne) > _abs(best):
                    best = te_ne
                largest[i, j] = best
    return out_, largest_


def wp_update(int32_t[:, :, ::1] errors, int32_t[:, ::1] true_, const int64_t[::1] here,
              const int64_t[:, :, ::1] sub, const int64_t[:, ::1] pred, const int64_t[:, ::1] values,
              int64_t extra):
    """Record the errors at ``here`` once the pixels' values (n, k) are known: ``weighted.State.update``."""
    cdef Py_ssize_t n = values.shape[0], k = values.shape[1], i, j, s
    cdef int64_t v, p, rounding = (1 << extra >> 1) - 1
    with nogil:
        for j in range(k):
            p = here[j]
            for i in range(n):
                v = values[i, j] << extra
                true_[p, i] = <int32_t>(pred[i, j] - v)
                for s in range(4):
                    errors[s, p, i] = <int32_t>((_abs(sub[s, i, j] - v) + rounding) >> extra)


def own_prediction(const int32_t[:, ::1] r, const int64_t[::1] here, const int64_t[::1] offsets, int64_t top,
                   const int64_t[:, ::1] calic, const int64_t[:, ::1] wp, const int16_t[::1] leaves,
                   const int8_t[::1] predictor):
    """Each pixel's prediction (n, k) by its leaf's predictor (``context_tree.PREDICTORS``: CALIC's, W, N,
    W + N - NW clipped, the weighted one's; ``wp`` (0, 0) when the tree has none):
    ``context_tree.Tree.prediction`` on pixel-major planes."""
    cdef Py_ssize_t n = calic.shape[0], k = calic.shape[1], i, j
    cdef int64_t p, a, b, c, v
    cdef int8_t which
    out_ = np.empty((n, k), np.int64)
    cdef int64_t[:, ::1] out = out_
    with nogil:
        for i in range(n):
            for j in range(k):
                p = here[j]
                which = predictor[leaves[i * k + j]]
                if which == 0:
                    v = calic[i, j]
                elif which == 1:
                    v = r[p + offsets[0], i]
                elif which == 2:
                    v = r[p + offsets[1], i]
                elif which == 3:
                    a, b, c = r[p + offsets[0], i], r[p + offsets[1], i], r[p + offsets[2], i]
                    v = a + b - c
                    v = 0 if v < 0 else (top if v > top else v)
                elif wp.shape[0] > 0:
                    v = wp[i, j]
                else:  # no weighted predictor's pass: CALIC's (the stream's check_tree refuses such trees)
                    v = calic[i, j]
                out[i, j] = v
    return out_


def split_histograms(int32_t[:, :, :, ::1] out, const int32_t[::1] node_of, const uint8_t[::1] binned,
                     const int16_t[:, ::1] sym):
    """Fill ``out`` (m, nb, K, a) with the counts of each leaf's pixels by bin of one property and by
    symbol of each of K predictors: ``image_tree.grow``'s histograms, in one pass (a buffer reused:
    a fresh one per property cost more in page faults than the counting)."""
    cdef Py_ssize_t kk = sym.shape[0], n = node_of.shape[0], px, s
    if out.shape[2] != kk:
        raise ValueError("split_histograms: one histogram per predictor expected")
    with nogil:
        memset(&out[0, 0, 0, 0], 0, out.shape[0] * out.shape[1] * kk * out.shape[3] * sizeof(int32_t))
        for px in range(n):
            for s in range(kk):
                out[node_of[px], binned[px], s, sym[s, px]] += 1


def bin_properties(const int32_t[:, ::1] props, const int32_t[:, ::1] thresholds):
    """Each property's bin (P, N) uint8 of every pixel: how many of its sorted ``thresholds`` (P, B),
    padded with INT32_MAX, are below the value (x <= th[j] is bin <= j: numpy's searchsorted
    "left")."""
    cdef Py_ssize_t p, n = props.shape[1], b = thresholds.shape[1], i, lo, hi, mid
    cdef int32_t x
    if thresholds.shape[0] != props.shape[0] or b > 255:
        raise ValueError("bin_properties: one row of at most 255 thresholds per property")
    out_ = np.empty((props.shape[0], n), np.uint8)
    cdef uint8_t[:, ::1] out = out_
    with nogil:
        for p in range(props.shape[0]):
            for i in range(n):
                x, lo, hi = props[p, i], 0, b
                while lo < hi:  # the first threshold >= x
                    mid = (lo + hi) >> 1
                    if thresholds[p, mid] < x:
                        lo = mid + 1
                    else:
                        hi = mid
                out[p, i] = <uint8_t>lo
    return out_


def leaf_histograms(const int32_t[::1] node_of, const int16_t[:, ::1] sym, Py_ssize_t m, Py_ssize_t a):
    """Counts (m, K, a) int64 of each leaf's symbols by predictor: ``image_tree._histograms``."""
    cdef Py_ssize_t kk = sym.shape[0], n = node_of.shape[0], px, s
    if sym.shape[1] != n:
        raise ValueError("leaf_histograms: one symbol per pixel and predictor expected")
    out_ = np.zeros((m, kk, a), np.int64)
    cdef int64_t[:, :, ::1] out = out_
    with nogil:
        for px in range(n):
            for s in range(kk):
                out[node_of[px], s, sym[s, px]] += 1
    return out_


def best_splits(const int32_t[:, :, :, ::1] h, const int64_t[:, :, ::1] whole, const double[::1] raw,
                const double[::1] xlogx):
    """For each leaf i of ``image_tree.grow``'s histograms h (m, nb, K, a) (bins of one property) and its
    whole histograms (m, K, a): the cheapest split into bins <= j and the rest, each side coded with
    its best predictor among the K, as (bits (m,), j (m,)): the bits of a histogram are
    T log2 T - sum c log2 c (``xlogx`` a table of c log2 c) plus its tokens' raw bits (``raw`` (a,)).
    Only the leaf's symbols are visited, and only bins that hold pixels (an empty bin moves no
    split)."""
    cdef Py_ssize_t m = h.shape[0], nb = h.shape[1], kk = h.shape[2], a = h.shape[3], i, s, j, x, u, used
    cdef int64_t c, left_c, right_c, in_bin
    cost_ = np.full(m, np.inf)
    at_ = np.zeros(m, np.int64)
    left_ = np.zeros((kk, a), np.int64)
    sums_ = np.zeros((kk, 6), np.float64)  # per predictor: left total, sum f, raw bits; the same right
    symbols_ = np.zeros(a, np.int64)
    cdef double[::1] cost = cost_
    cdef int64_t[::1] at = at_, symbols = symbols_
    cdef int64_t[:, ::1] left = left_
    cdef double[:, ::1] sums = sums_
    cdef double best_left, best_right, bits
    with nogil:
        for i in range(m):
            used = 0
            for x in range(a):
                c = 0
                for s in range(kk):
                    c += whole[i, s, x]
                if c:
                    symbols[used] = x
                    used += 1
            for s in range(kk):
                sums[s, 0], sums[s, 1], sums[s, 2], sums[s, 3], sums[s, 4], sums[s, 5] = 0, 0, 0, 0, 0, 0
                for x in range(a):
                    left[s, x] = 0
                    c = whole[i, s, x]
                    sums[s, 3] += c
                    sums[s, 4] += xlogx[c]
                    sums[s, 5] += c * raw[x]
            for j in range(nb - 1):
                in_bin = 0
                for u in range(used):
                    in_bin += h[i, j, 0, symbols[u]]
                if in_bin == 0:
                    continue
                best_left, best_right = INFINITY, INFINITY
                for s in range(kk):
                    for u in range(used):
                        x = symbols[u]
                        c = h[i, j, s, x]
                        if c:
                            left_c, right_c = left[s, x], whole[i, s, x] - left[s, x]
                            sums[s, 1] += xlogx[left_c + c] - xlogx[left_c]
                            sums[s, 4] += xlogx[right_c - c] - xlogx[right_c]
                            sums[s, 0] += c
                            sums[s, 3] -= c
                            sums[s, 2] += c * raw[x]
                            sums[s, 5] -= c * raw[x]
                            left[s, x] = left_c + c
                    bits = xlogx[<int64_t>sums[s, 0]] - sums[s, 1] + sums[s, 2]
                    best_left = bits if bits < best_left else best_left
                    bits = xlogx[<int64_t>sums[s, 3]] - sums[s, 4] + sums[s, 5]
                    best_right = bits if bits < best_right else best_right
                if best_left + best_right < cost[i]:
                    cost[i], at[i] = best_left + best_right, j
    return cost_, at_


# The lossless stream of container format 7 in one compiled pass (``_raster.h``; ``raster.py``).

cdef extern from "_raster.h":
    ctypedef struct rs_setup:
        const int64_t *nodes
        const int16_t *leaf
        const int8_t *predictor
        int64_t leaves
        int uses_wp, predicts
        int64_t n, k, h, w
        const int64_t *top
        const int64_t *plane_id
        const int64_t *scale
        int64_t step
        const int64_t *thresholds
        const int64_t *blend
        const int64_t *max_weights
        const int64_t *pc
        int64_t extra
        int64_t t, direct_bits, msb
    ctypedef struct rs_tables:
        int64_t S
        int64_t *counts
        int64_t *total
        int64_t *fresh
        uint32_t *cum
        int64_t weight, refresh, halve_at
    ctypedef struct rs_coder:
        uint32_t *words
        int64_t size
    int RS_ENCODE, RS_DECODE, RS_COUNT, RS_MAX_SYMBOLS
    int rs_take(rs_coder *c, const uint32_t *words, int64_t m) nogil
    void rs_release(rs_coder *c) nogil
    int rs_flush(rs_coder *c) nogil
    int rs_push_gathered(rs_coder *c) nogil
    int rs_code(const rs_setup *s, rs_tables *t, rs_coder *co, uint16_t *planes, int mode,
                int64_t *counts) nogil
    int rs_sample(const rs_setup *s, const uint16_t *planes, const int64_t *picked, int64_t m,
                  int32_t *props, int32_t *tokens, int64_t *counts) nogil

RASTER_STATUS = {1: MemoryError, 2: "damaged", 3: "too large"}


cdef rs_setup _setup(tuple shape, const int64_t[:, ::1] planes_of, int64_t step, const int64_t[:, ::1] nodes,
                     const int16_t[::1] leaf, const int8_t[::1] predictor, bint uses_wp, bint predicts,
                     const int64_t[::1] constants):
    """The setup from ``raster.py``'s arguments: ``planes_of`` (3, k) each plane's top, tree plane
    and skew scale; ``constants``: t, direct bits, msb, then the 6 skew thresholds, the 21 blend
    weights, the 4 maximum weights, the 3 correction factors and the extra bits of ``weighted``."""
    cdef rs_setup s
    if constants.shape[0] != 3 + 6 + 21 + 4 + 3 + 1 or planes_of.shape[0] != 3:
        raise ValueError("raster: constants or planes malformed")
    if nodes.shape[1] != 4 or leaf.shape[0] != nodes.shape[0]:
        raise ValueError("raster: tree arrays malformed")
    s.nodes, s.leaf, s.predictor = &nodes[0, 0], &leaf[0], &predictor[0]
    s.leaves = predictor.shape[0]
    s.uses_wp, s.predicts = uses_wp, predicts
    s.n, s.k, s.h, s.w = shape
    if planes_of.shape[1] != s.k:
        raise ValueError("raster: one top, plane and scale per plane expected")
    s.top, s.plane_id, s.scale = &planes_of[0, 0], &planes_of[1, 0], &planes_of[2, 0]
    s.step = step
    s.t, s.direct_bits, s.msb = constants[0], constants[1], constants[2]
    s.thresholds, s.blend = &constants[3], &constants[9]
    s.max_weights, s.pc, s.extra = &constants[30], &constants[34], constants[37]
    return s


def raster_code(int mode, uint16_t[:, :, ::1] planes, tuple shape, const int64_t[:, ::1] planes_of, int64_t step,
                const int64_t[:, ::1] nodes, const int16_t[::1] leaf, const int8_t[::1] predictor,
                bint uses_wp, bint predicts, const int64_t[::1] constants, const uint32_t[:, ::1] rows,
                int64_t weight, int64_t refresh, int64_t halve_at, const uint32_t[::1] words):
    """Encode (mode 0) the planes (n * k, h, w) uint16 onto the stream ``words`` (constriction's
    get_compressed), or decode (mode 1) them from it into ``planes``; returns the stream's words
    after (encode: with the planes; decode: what is left), and a status (0, or a key of
    RASTER_STATUS). Near-lossless encoding leaves the reconstruction in ``planes``. The leaves'
    tables start as ``rows`` (leaves, 2T) and adapt by ``weight`` per symbol (``adaptive.py``)."""
    cdef rs_setup s = _setup(shape, planes_of, step, nodes, leaf, predictor, uses_wp, predicts, constants)
    cdef rs_tables t
    cdef rs_coder co
    cdef Py_ssize_t leaves = rows.shape[0], width = rows.shape[1], i, j
    cdef int status
    if mode not in (RS_ENCODE, RS_DECODE) or planes.shape[0] != s.n * s.k or planes.shape[1] != s.h \
            or planes.shape[2] != s.w or leaves != s.leaves or width != 2 * s.t or width > RS_MAX_SYMBOLS:
        raise ValueError("raster_code: planes, tables or mode malformed")
    counts_ = np.ascontiguousarray(rows, np.int64)
    total_ = counts_.sum(1)
    fresh_ = np.zeros(leaves, np.int64)
    cum_ = np.zeros((leaves, width + 1), np.uint32)
    cum_[:, 1:] = np.cumsum(rows, axis=1, dtype=np.uint32)
    cdef int64_t[:, ::1] counts = counts_
    cdef int64_t[::1] total = total_, fresh = fresh_
    cdef uint32_t[:, ::1] cum = cum_
    t.S, t.counts, t.total, t.fresh, t.cum = width, &counts[0, 0], &total[0], &fresh[0], &cum[0, 0]
    t.weight, t.refresh, t.halve_at = weight, refresh, halve_at
    cdef const uint32_t *given = &words[0] if words.shape[0] else NULL
    if rs_take(&co, given, words.shape[0]):
        raise MemoryError
    with nogil:
        status = rs_code(&s, &t, &co, &planes[0, 0, 0], mode, NULL)
        if status == 0 and mode == RS_ENCODE:
            status = rs_push_gathered(&co)
        if status == 0:
            status = rs_flush(&co)
    out = np.empty(co.size if status == 0 else 0, np.uint32)
    cdef uint32_t[::1] o = out
    for i in range(out.shape[0]):
        o[i] = co.words[i]
    rs_release(&co)
    return out, status


def raster_counts(const uint16_t[:, :, ::1] planes, tuple shape, const int64_t[:, ::1] planes_of,
                  const int64_t[:, ::1] nodes, const int16_t[::1] leaf, const int8_t[::1] predictor,
                  bint uses_wp, bint predicts, const int64_t[::1] constants):
    """Counts (leaves, 2T - 1) of the signed tokens of lossless planes (n * k, h, w) in each leaf
    of the tree, and a status."""
    cdef rs_setup s = _setup(shape, planes_of, 1, nodes, leaf, predictor, uses_wp, predicts, constants)
    cdef int status
    if planes.shape[0] != s.n * s.k or planes.shape[1] != s.h or planes.shape[2] != s.w:
        raise ValueError("raster_counts: planes malformed")
    counts_ = np.zeros((s.leaves, 2 * s.t - 1), np.int64)
    cdef int64_t[:, ::1] counts = counts_
    with nogil:  # counting reads the planes only
        status = rs_code(&s, NULL, NULL, <uint16_t *>&planes[0, 0, 0], RS_COUNT, &counts[0, 0])
    return counts_, status


def raster_sample(const uint16_t[:, :, ::1] planes, tuple shape, const int64_t[:, ::1] planes_of,
                  const int64_t[:, ::1] nodes, const int16_t[::1] leaf, const int8_t[::1] predictor,
                  const int64_t[::1] constants, const int64_t[::1] picked):
    """(properties (21, m) int32, each predictor's signed tokens (5, m) int32) of the values at the
    sorted positions ``picked`` (in coding order) of lossless planes (n * k, h, w); the counts
    (leaves, 2T - 1) of every value's signed token in each leaf of a tree that predicts as CALIC does
    (a model's); and a status."""
    cdef rs_setup s = _setup(shape, planes_of, 1, nodes, leaf, predictor, True, False, constants)
    cdef Py_ssize_t m = picked.shape[0]
    cdef int status
    if planes.shape[0] != s.n * s.k or planes.shape[1] != s.h or planes.shape[2] != s.w:
        raise ValueError("raster_sample: planes malformed")
    if np.any(np.asarray(predictor)) or (m and (np.any(np.diff(picked) <= 0) or picked[0] < 0)):
        raise ValueError("raster_sample: a tree that predicts otherwise, or positions not sorted")
    props_ = np.zeros((PROPS, m), np.int32)
    tokens_ = np.zeros((5, m), np.int32)
    counts_ = np.zeros((s.leaves, 2 * s.t - 1), np.int64)
    cdef int32_t[:, ::1] props = props_, tokens = tokens_
    cdef int64_t[:, ::1] counts = counts_
    cdef const int64_t *at = &picked[0] if m else NULL
    with nogil:
        status = rs_sample(&s, &planes[0, 0, 0], at, m, &props[0, 0] if m else NULL,
                           &tokens[0, 0] if m else NULL, &counts[0, 0])
    return props_, tokens_, counts_, status


cdef extern from "_raster.h":
    int rs_gather(rs_coder *c, uint32_t start, uint32_t freq) nogil
    void rs_advance(rs_coder *c, uint64_t start, uint64_t freq) nogil
    uint64_t rs_slot(const rs_coder *c) nogil


def rans_push(const uint32_t[::1] words, const uint32_t[::1] starts, const uint32_t[::1] freqs):
    """The stream ``words`` with the symbols (start, frequency), at 24-bit precision, pushed so that
    they read back first to last: what the raster coder does, for the tests to hold to
    constriction's ``encode_reverse``."""
    cdef rs_coder co
    cdef Py_ssize_t i
    if rs_take(&co, &words[0] if words.shape[0] else NULL, words.shape[0]):
        raise MemoryError
    for i in range(starts.shape[0]):
        if freqs[i] == 0 or starts[i] + freqs[i] > (1 << 24) or rs_gather(&co, starts[i], freqs[i]):
            rs_release(&co)
            raise ValueError("rans_push: a frequency of 0, past 2^24, or no memory")
    status = rs_push_gathered(&co) or rs_flush(&co)
    out = np.array(<uint32_t[:co.size]> co.words, np.uint32) if co.size else np.zeros(0, np.uint32)
    rs_release(&co)
    if status:
        raise MemoryError
    return out


def rans_pop(const uint32_t[::1] words, const uint32_t[::1] cum, Py_ssize_t count):
    """(``count`` symbols read off ``words`` with one table, given cumulatively (S + 1 entries from 0
    to 2^24), the words left): the raster decoder's reading, for the tests."""
    cdef rs_coder co
    cdef Py_ssize_t i, s, lo, hi, mid
    cdef uint64_t slot
    out_ = np.empty(count, np.int64)
    cdef int64_t[::1] out = out_
    if rs_take(&co, &words[0] if words.shape[0] else NULL, words.shape[0]):
        raise MemoryError
    for i in range(count):
        slot = rs_slot(&co)
        lo, hi = 0, cum.shape[0] - 1
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if cum[mid] <= slot:
                lo = mid
            else:
                hi = mid
        out[i] = lo
        rs_advance(&co, cum[lo], cum[lo + 1] - cum[lo])
    status = rs_flush(&co)
    left = np.array(<uint32_t[:co.size]> co.words, np.uint32) if co.size else np.zeros(0, np.uint32)
    rs_release(&co)
    if status:
        raise MemoryError
    return out_, left
