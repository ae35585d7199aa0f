"""Tile-global transform levels: the bundled Fashion-MNIST model's lowest qualities.

    encode: uint8 images -> planes -> tiles of the model's native size (edge-padded) -> g_a
            (integer network) -> scale by the level's gain -> pick the cheapest prior cluster ->
            then group by group: the context network refines the cluster's means and scales from
            the groups before, round(y - mean) -> ANS against the frozen integer tables.
    decode: the same path backwards.

A transform learned over a whole small aligned tile (started from PCA) is excellent on small
aligned datasets and useless off them: a model keeps such levels only where they win. Every
tile level of a model shares one ``TileTransform`` (networks, frozen prior, context networks);
a ``TileLevel`` is the transform at one gain.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

import bitstream
from bitstream.coder import ESCAPE_RANGE, PRECISION
from codec.errors import FormatError
from codec.levels import modelfile, poses, registry
from codec.levels.entropy import LADDER, RUNG, SCALE_MIN, FrozenPrior, gaussian_bits, nearest_rung
from codec.levels.integer import FixedContext, IntegerTransforms, fixed_latents
from codec.levels.planes import (
    from_planes,
    from_tiles,
    grid,
    to_planes,
    to_tiles,
)
from codec.levels.tile_config import ModelConfig, param_shapes

BLOCK = 256  # tiles per step of the transforms
CHOICE_BLOCK = (
    32  # tiles per step of the cluster choice: its (tiles x clusters x pixels) arrays stay in cache
)
COST_UNIT = 1024  # bit costs as integers in 1/1024 bit
# what an escaped symbol can carry
ESCAPE_MIN, ESCAPE_MAX = (
    -(ESCAPE_RANGE // 2),
    ESCAPE_RANGE // 2 - 1,
)


class TileTransform:
    """The integer networks, frozen prior and context networks of a model's tile levels."""

    def __init__(self, config, body: dict, *, source: str):
        self.config = config
        shapes = param_shapes(config)
        params = body["params"]
        if not isinstance(params, dict) or set(params) != set(shapes):
            raise FormatError(f"{source}: parameters do not match the architecture")
        values = {}
        for key, shape in shapes.items():
            v = modelfile.decode_array(params[key], what=f"{source}: {key}", shape=shape)
            if v.dtype.kind != "f" or not np.isfinite(v).all():
                raise FormatError(f"{source}: parameter {key} is not finite floating point")
            values[key] = v
        self.params = values
        self.frozen = frozen_from_body(
            body,
            values["mean"].astype(np.float32),
            m=config.clusters,
            q=config.qualities,
            p=config.pixels,
        )
        frozen_tables = self.frozen.tables()
        self.pose_table = len(frozen_tables)  # after the frozen ones: see ``poses``
        pose_freqs = poses.table()
        self.tables = bitstream.Tables(
            np.append(frozen_tables.lows, 0), [*frozen_tables.freqs, pose_freqs]
        )
        self._pose_cost = np.round(
            (PRECISION - np.log2(pose_freqs[:-1].astype(np.float64))) * COST_UNIT
        ).astype(np.int64)
        # the model's mean tile, in grey levels: where the search lines images up
        self.reference = np.clip(
            np.round(values["pixel_mean"].astype(np.float64) * 255), 0, 255
        ).astype(np.uint8)
        try:
            self._transforms = IntegerTransforms(values)
            self._contexts = {g: FixedContext(values, g) for g in range(1, len(config.bounds) - 1)}
        except ValueError as e:
            raise FormatError(f"{source}: {e}") from None
        self._per_level: dict[int, dict] = {}
        costs = self.frozen.bit_costs()
        self._cost_columns = costs.shape[1]
        # uint16 (costs stay below 64 bits): the gather in ``choose`` moves half the bytes of int32
        self._bit_costs = np.round(np.minimum(costs, 63.0) * COST_UNIT).astype(np.uint16).ravel()
        # a tile's cost in ``choose`` is at most (P + 1) x 63 bits (the cluster's own below 25):
        # in int32 below 2^31, exact, and the choice takes 9% less time than with int64 sums
        self._sum_type = np.int32 if (config.pixels + 1) * 63 * COST_UNIT < 2**31 else np.int64

    def arrays(self, index: int) -> dict:
        """Per-level arrays of the coder (level ``index`` from 0), built once from the frozen
        integers."""
        if index not in self._per_level:
            f, q = self.frozen, index
            cluster_freqs = f.freqs[f.cluster_table(q)][:-1].astype(np.float64)
            self._per_level[index] = {
                "gain": f.gain[q].astype(np.float64),
                "mean": f.mean[:, q],  # (M, P) float32
                "mean64": f.mean[:, q].astype(np.float64),
                "index": f.index[:, q],  # (M, P) uint8
                "rung": f.rung[:, q].astype(np.float64),  # (M, P)
                # where each element's ladder table is centred in the flattened cost array: (M, P)
                "offset": (
                    f.index[:, q].astype(np.int32) * self._cost_columns + self._cost_columns // 2
                ),
                # (M,)
                "cluster_cost": np.round((PRECISION - np.log2(cluster_freqs)) * COST_UNIT).astype(
                    np.int32
                ),
                "inv_gain": f.inv_gain[q].astype(np.float64),
            }
        return self._per_level[index]

    def choose(self, y: np.ndarray, a: dict) -> np.ndarray:
        """The cluster whose frozen tables code each latent (B, P) in the fewest bits, counted
        exactly in integers."""
        half = self._cost_columns // 2
        v = y[:, None, :] - a["mean"]  # (B, M, P): the symbols under each cluster, once rounded
        np.rint(v, out=v)
        # beyond the widest table: the escape's cost (and a defined cast below)
        np.clip(v, -half, half, out=v)
        column = v.astype(np.int32)
        column += a["offset"]
        bits = self._bit_costs.take(column).sum(-1, dtype=self._sum_type)
        bits += a["cluster_cost"]  # (B, M)
        return bits.argmin(1).astype(np.int32)

    def analysis(self, tiles: np.ndarray) -> np.ndarray:
        return self._transforms.analysis(tiles)

    def coded_cost(
        self, index: int, choice: np.ndarray, symbols: np.ndarray, tables: np.ndarray
    ) -> np.ndarray:
        """Bits (in 1/COST_UNIT, integers) the tables spend on each tile's cluster choice and
        latent (N,)."""
        half = self._cost_columns // 2
        column = np.clip(symbols, -half, half) + (
            tables.astype(np.int64) * self._cost_columns + half
        )
        return (
            self._bit_costs.take(column).sum(1, dtype=np.int64)
            + self.arrays(index)["cluster_cost"][choice]
        )

    def pose_cost(self, pose: np.ndarray) -> np.ndarray:
        return self._pose_cost[pose]

    def context(self, g: int, fixed: np.ndarray, index: int, choice: np.ndarray):
        return self._contexts[g](fixed, index, choice)

    def synthesize(self, latents: np.ndarray) -> np.ndarray:
        """uint8 tiles (N, P) from the decoder's latents (N, P)."""
        out = np.empty(latents.shape, np.uint8)
        for start in range(0, len(latents), BLOCK):
            out[start : start + BLOCK] = self._transforms.synthesis(latents[start : start + BLOCK])
        return out


class TileLevel(registry.WholeChunkLevel):
    """One quality level of the tile transform: the transform at the level's gain and prior (a
    ``registry.Level``)."""

    kind = "tile"

    def __init__(self, transform: TileTransform, index: int):
        self.transform, self.index = transform, index
        self.tile = transform.config.tile

    def fits(self, shape) -> bool:
        """Whether the scale may name this level for images of ``shape``: its native size only
        (it codes others tile by tile, far below its measured quality: a 30x30 item of four
        tiles cost 9x the bytes of the same item at 28x28 at matched PSNR)."""
        return tuple(shape[:2]) == tuple(self.tile)

    def coded_pixels(self, n: int, shape) -> int:
        """The positions coded for ``n`` images of ``shape``: whole tiles, padding included."""
        channels = shape[2] if len(shape) == 3 else 1
        rows, cols = grid(shape[0], shape[1], self.tile)
        return n * channels * rows * cols * self.transform.config.pixels

    def posed(self, shape, version: int = bitstream.FORMAT_VERSION) -> bool:
        """Whether images of ``shape`` are coded in poses (``poses``): one tile each, from
        format 4."""
        return version >= 4 and grid(shape[0], shape[1], self.tile) == (1, 1)

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes:
        """One ANS stream for uint8 images (N, H, W[, C]): cluster choices, poses (images of one
        tile), then the latent's groups in turn."""
        tiles = to_tiles(to_planes(images), self.tile)
        if self.posed(images.shape[1:3]):
            pose, (choice, symbols, index) = self.search(tiles)
        else:
            pose, (choice, symbols, index) = None, self.latents(tiles)
        encoder = bitstream.Encoder(self.transform.tables)
        encoder.add(choice, np.full(choice.shape, self.transform.frozen.cluster_table(self.index)))
        if pose is not None:
            encoder.add(pose, np.full(pose.shape, self.transform.pose_table))
        for lo, hi in pairwise(self.transform.config.bounds):
            encoder.add(symbols[:, lo:hi], index[:, lo:hi])
        return encoder.finish(min_bytes=min_bytes)

    def decode(
        self, data: bytes, n: int, shape, *, version: int = bitstream.FORMAT_VERSION
    ) -> np.ndarray:
        """Images (n, H, W[, C]) from one ANS stream of container format ``version`` (2: without end
        marker; before 4: without poses)."""
        channels = shape[2] if len(shape) == 3 else 1
        rows, cols = grid(shape[0], shape[1], self.tile)
        decoder = bitstream.Decoder(data, self.transform.tables, framed=version >= 3)
        choice = decoder.read(
            np.full(n * channels * rows * cols, self.transform.frozen.cluster_table(self.index))
        )
        if (
            (choice < 0) | (choice >= self.transform.config.clusters)
        ).any():  # an escaped symbol can be anything
            raise FormatError("entropy-coded stream is damaged (cluster index out of range)")
        pose = (
            decoder.read(np.full(choice.shape, self.transform.pose_table))
            if self.posed(shape, version)
            else None
        )
        if pose is not None and ((pose < 0) | (pose >= poses.COUNT)).any():
            raise FormatError("entropy-coded stream is damaged (pose out of range)")
        latents = self.walk(
            choice.astype(np.intp), lambda lo, hi, mean, index, rung: decoder.read(index)
        )
        decoder.finish()
        tiles = self.transform.synthesize(latents)
        if pose is not None:
            tiles = poses.undo(tiles, pose.astype(np.intp), self.tile)
        return from_planes(from_tiles(tiles, n * channels, shape[0], shape[1], self.tile), n, shape)

    def latents(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cluster choice (N,), integer latents (N, P), their table indices (N, P)) of uint8
        tiles (N, P).

        Per tile, the cluster whose frozen tables code it in the fewest bits, costs counted
        exactly from the tables (as integers, so ties and sums are the same everywhere);
        then each group of the latent is rounded around its mean as refined by its context.
        """
        y, choice = self.analyse(tiles)
        symbols, index = np.empty(y.shape, np.int32), np.empty(y.shape, np.uint8)

        def round_group(lo, hi, mean, group_index, _rung):
            # clipping only matters for a hostile model
            v = np.clip(np.rint(y[:, lo:hi] - mean), ESCAPE_MIN, ESCAPE_MAX)
            symbols[:, lo:hi], index[:, lo:hi] = v, group_index
            return v

        self.walk(choice, round_group)
        return choice, symbols, index

    def search(
        self, tiles: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(pose (N,), ``latents`` of the posed tiles) of uint8 tiles (N, P): per tile, of "as it
        is" and the candidates ``poses`` proposes, the one with the smallest bits + λ·(squared
        error lost) / P, counted exactly in integers (ties keep the earlier candidate)."""
        t = self.transform
        # the level's λ, per unit of squared error
        weight = COST_UNIT * t.config.lambdas[self.index] / t.config.pixels
        pose = np.full(len(tiles), poses.IDENTITY)
        choice, symbols, index = self.latents(tiles)
        best = t.coded_cost(self.index, choice, symbols, index) + t.pose_cost(pose)

        def consider(candidates: list[tuple[np.ndarray, np.ndarray]]) -> None:
            # one batch for all candidates (the integer networks' cost is mostly per call on small
            # batches), then taken in order as if one at a time: ties keep the earlier candidate
            which_all = np.concatenate([[], *(w for w, _ in candidates)]).astype(np.intp)
            if not len(which_all):
                return
            p_all = np.concatenate([p for _, p in candidates])
            c, s, i = self.latents(poses.apply(tiles[which_all], p_all, self.tile))
            cost = t.coded_cost(self.index, c, s, i) + t.pose_cost(p_all)
            cost += np.round(weight * poses.lost_error(tiles[which_all], p_all, self.tile)).astype(
                np.int64
            )
            start = 0
            for which, _ in candidates:
                k = slice(start, start + len(which))
                start = k.stop
                better = cost[k] < best[which]
                won, at = which[better], np.flatnonzero(better) + k.start
                best[won], pose[won], choice[won], symbols[won], index[won] = (
                    cost[at],
                    p_all[at],
                    c[at],
                    s[at],
                    i[at],
                )

        consider(poses.first_guesses(tiles, t.reference, self.tile))
        consider(poses.refinements(tiles, pose, t.reference, self.tile))
        return pose, (choice, symbols, index)

    def analyse(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(latents before rounding (N, P) float32, after the level's gain; cluster choice (N,))
        of uint8 tiles."""
        a = self.transform.arrays(self.index)
        ys, choices = [], []
        for start in range(0, len(tiles), BLOCK):
            y = self.transform.analysis(tiles[start : start + BLOCK]) * a["gain"]
            # exact in float32; real latents are far inside
            y = np.clip(y, 2 * ESCAPE_MIN, 2 * ESCAPE_MAX).astype(np.float32)
            ys.append(y)
            choices += [
                self.transform.choose(y[part : part + CHOICE_BLOCK], a)
                for part in range(0, len(y), CHOICE_BLOCK)
            ]
        return np.concatenate(ys), np.concatenate(choices)

    def walk(self, choice: np.ndarray, symbols_of) -> np.ndarray:
        """Visit the latent's groups in coding order; returns the decoder's latents (N, P), after
        the inverse gain.

        Group g's means and tables follow from the cluster choice (N,) and the groups before it;
        ``symbols_of(lo, hi, mean, index, rung)`` gives the integer symbols of elements lo..hi
        (the encoder rounds, the decoder reads). ``rung`` is the unrounded scale behind ``index``.
        """
        a = self.transform.arrays(self.index)
        config = self.transform.config
        bounds = config.bounds
        latents = np.empty((len(choice), config.pixels), np.float64)
        fixed = np.empty_like(latents) if len(bounds) > 2 else None  # the context networks' input
        for g, (lo, hi) in enumerate(pairwise(bounds)):
            # copies: changed in place below
            mean, rung = (
                a["mean64"][choice, lo:hi],
                a["rung"][choice, lo:hi],
            )
            if g == 0:
                index = a["index"][choice, lo:hi]
            else:
                d_mean, d_rung = self.transform.context(g, fixed[:, :lo], self.index, choice)
                d_mean *= a["gain"][lo:hi]
                mean += d_mean
                rung += d_rung
                index = nearest_rung(rung, self.transform.frozen.ladder_size)
            latents[:, lo:hi] = (symbols_of(lo, hi, mean, index, rung) + mean) * a["inv_gain"][
                lo:hi
            ]
            if fixed is not None and hi < bounds[-1]:  # the last group is no group's context
                fixed[:, lo:hi] = fixed_latents(latents[:, lo:hi])
        return latents

    def reconstruct(self, choice: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """uint8 tiles (N, P) from cluster choices (N,) and integer latents (N, P)."""
        return self.transform.synthesize(self.walk(choice, lambda lo, hi, *_: symbols[:, lo:hi]))

    def ideal_bits(self, images: np.ndarray) -> float:
        """The model's own rate estimate at rounding: ideal bits under its continuous prior.

        Uses the scales at their unrounded (float16) ladder positions, clipped to the ladder
        as training clips them, and the cluster probabilities themselves (not the integer
        tables), so comparing it with the coded size measures what rounding to tables and
        coding add.
        """
        logits = self.transform.params["cluster_logits"][self.index].astype(np.float64)
        cluster_bits = -(
            logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        ) / np.log(2)
        total = 0.0
        for start in range(0, len(images), 1024):
            tiles = to_tiles(to_planes(images[start : start + 1024]), self.tile)
            # coded in the poses the encoder picks, which cost their bits
            if self.posed(images.shape[1:3]):
                pose, (choice, v, _) = self.search(tiles)
                total += float(
                    PRECISION * len(pose) - np.log2(poses.table()[pose].astype(np.float64)).sum()
                )
            else:
                choice, v, _ = self.latents(tiles)
            scale = np.empty(v.shape)

            def record(lo, hi, _mean, _index, rung, scale=scale, v=v):
                scale[:, lo:hi] = SCALE_MIN * np.exp(RUNG * np.clip(rung, 0, LADDER - 1))
                return v[:, lo:hi]

            self.walk(choice, record)
            total += float(gaussian_bits(v, scale).sum())
            total += cluster_bits[choice].sum()
        return total


# The tile kind's section of the model file: its architecture ("config", nil: none), its
# parameters ("params", '/'-joined paths) and its frozen prior ("frozen", nil: none).


def _stored_params(params: dict) -> dict:
    return {k: modelfile.encode_array(_stored(k, v)) for k, v in sorted(params.items())}


HALF_PRECISION = (
    "analysis_linear",
    "synthesis_linear",
    "analysis_branch",
    "synthesis_branch",
    "context",
    "log_scale",
)


def _stored(name: str, value: np.ndarray) -> np.ndarray:
    """Transform and context weights and scales are stored as float16 (the model *is* the rounded
    weights, on every machine); means, gains and cluster logits stay float32."""
    return value.astype(np.float16) if name.startswith(HALF_PRECISION) else value.astype(np.float32)


def _frozen_to_dict(f: FrozenPrior) -> dict:
    # The means are the parameter "mean" itself: stored once, with the parameters.
    return {
        "lows": modelfile.encode_array(f.lows),
        "freqs": [modelfile.encode_array(t) for t in f.freqs],
        # the table indices are its nearest integers: not stored
        "rung": modelfile.encode_array(f.rung),
        "gain": modelfile.encode_array(f.gain),
        "inv_gain": modelfile.encode_array(f.inv_gain),
    }


def _frozen_from_dict(
    d: dict, mean: np.ndarray, *, m: int, q: int, p: int, version: int
) -> FrozenPrior:
    # Format 1 (before context modelling) stores table indices ("index") instead of rung positions.
    scales = "rung" if version >= 2 else "index"
    if not isinstance(d, dict) or set(d) != {"lows", "freqs", "gain", "inv_gain", scales}:
        raise FormatError("frozen: missing or unknown fields")
    lows = modelfile.decode_array(d["lows"], what="frozen.lows")
    if lows.ndim != 1 or not q < lows.size <= 256 + q or (np.abs(lows) > 4096).any():
        raise FormatError("frozen.lows: out of range")
    if not isinstance(d["freqs"], list) or len(d["freqs"]) != lows.size:
        raise FormatError("frozen.freqs: one table per entry of lows expected")
    freqs = []
    for t, raw in enumerate(d["freqs"]):
        table = modelfile.decode_array(raw, what=f"frozen.freqs[{t}]")
        if (
            table.dtype != np.uint32
            or table.ndim != 1
            or not 2 <= table.size <= 8192
            or (table == 0).any()
            or int(table.sum(dtype=np.int64)) != 1 << PRECISION
        ):
            raise FormatError(f"frozen.freqs[{t}]: not a valid integer table")
        freqs.append(table)
    ladder = lows.size - q
    if scales == "rung":
        rung = modelfile.decode_array(d["rung"], what="frozen.rung", shape=(m, q, p))
        if rung.dtype != np.float16 or not np.isfinite(rung).all():
            raise FormatError("frozen.rung: not finite float16 values")
    else:
        index = modelfile.decode_array(d["index"], what="frozen.index", shape=(m, q, p))
        if index.dtype != np.uint8 or index.max(initial=0) >= ladder:
            raise FormatError("frozen.index: table index out of range")
        # whole rungs: FrozenPrior.index gives the same indices back
        rung = index.astype(np.float16)
    if any(lows[t] > 0 or len(freqs[t]) != 2 * -int(lows[t]) + 2 for t in range(ladder)):
        raise FormatError(
            "frozen: a ladder table does not cover a symmetric range -K..K plus its escape"
        )
    if any(lows[ladder + j] != 0 or len(freqs[ladder + j]) != m + 1 for j in range(q)):
        raise FormatError("frozen: cluster tables do not match the number of clusters")
    gain = modelfile.decode_array(d["gain"], what="frozen.gain", shape=(q, p))
    inv_gain = modelfile.decode_array(d["inv_gain"], what="frozen.inv_gain", shape=(q, p))
    for name, a in (("mean", mean), ("gain", gain), ("inv_gain", inv_gain)):
        if a.dtype != np.float32 or not np.isfinite(a).all():
            raise FormatError(f"frozen.{name}: not finite float32 values")
    return FrozenPrior(
        lows=lows, freqs=tuple(freqs), rung=rung, mean=mean, gain=gain, inv_gain=inv_gain
    )


def frozen_from_body(body: dict, mean: np.ndarray, *, m: int, q: int, p: int) -> FrozenPrior:
    try:
        return _frozen_from_dict(body["frozen"], mean, m=m, q=q, p=p, version=body["format"])
    except (KeyError, TypeError) as e:
        raise FormatError(f"model: frozen tables are malformed ({e})") from None


def read_section(body: dict, source: str) -> registry.Section | None:
    """The tile transform and its levels, or None (no config: the model has no tile levels)."""
    if body["config"] is None:
        if body["params"] or body["frozen"] is not None:
            raise FormatError(f"{source}: tile or pixel parameters without their config")
        return None
    transform = TileTransform(config_of(body, source), body, source=source)
    return registry.Section(
        transform, tuple(TileLevel(transform, i) for i in range(transform.config.qualities))
    )


def config_of(body: dict, source: str) -> ModelConfig:
    """The stored architecture (of the tile levels and the pixel levels' steps), checked."""
    try:
        return ModelConfig.from_dict(body["config"])
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise FormatError(f"{source}: {e}") from None


registry.register(
    registry.Kind(
        "tile",
        fields=(
            registry.Field("config", since=1, required=True, nullable_since=4, stored_type=dict),
            registry.Field(
                "params", since=1, required=True, empty={}, stored_type=dict, store=_stored_params
            ),
            registry.Field(
                "frozen",
                since=1,
                required=True,
                nullable_since=4,
                stored_type=dict,
                store=_frozen_to_dict,
            ),
        ),
        read=read_section,
    )
)
