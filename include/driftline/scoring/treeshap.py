"""Exact Linear TreeSHAP for LightGBM models, in C (treeshap.c, built by native_build).

The same contributions as LightGBM's `pred_contrib` (TreeSHAP, O(trees x leaves x depth^2) per
row) in O(trees x leaves x depth) (Yu, Ma, Wang 2022): one column per feature, then the expected
value, on the raw score (log-odds for binary). tests/unit/scoring/test_treeshap.py holds it equal to
pred_contrib to 1e-12 on random models (categorical splits, missing values, NaN, +-inf, zero).
The trees are read from the model text (what the registry verified), so no lightgbm import.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from driftline.errors import BadModel

log = logging.getLogger(__name__)

# Rows per C call when several threads share the work (ctypes releases the GIL during the call).
_ROWS_PER_PART = 256


class LinearTreesRefused(BadModel):
    """Linear trees (linear_tree=true) have a linear model in each leaf, which TreeSHAP on the
    leaf constants (pred_contrib, and this) does not explain."""


class UnsupportedModel(BadModel):
    """A model this implementation does not cover (multiclass, averaged output, empty counts): the
    caller uses LightGBM's pred_contrib instead."""


@dataclass
class _Forest:
    """Every tree's nodes in pre-order, flattened, as treeshap.c reads them."""

    tree_start: np.ndarray
    tree_points: np.ndarray
    tree_point_start: np.ndarray
    ys: np.ndarray
    ws: np.ndarray
    depth: np.ndarray
    ancestor: np.ndarray
    is_left: np.ndarray
    b: np.ndarray
    leaf_value: np.ndarray
    split_feature: np.ndarray
    decision_type: np.ndarray
    threshold: np.ndarray
    cat_start: np.ndarray
    cat_len: np.ndarray
    cat_bits: np.ndarray
    tree_table_start: np.ndarray
    inv_f0: np.ndarray
    inv_f1: np.ndarray
    has_deeper: np.ndarray
    max_depth: int
    max_points: int


def _trees(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(header, trees): each a dict of the model text's key=value lines."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.splitlines():
        if line.startswith("end of trees"):
            break
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    return header, trees


def _numbers(tree: dict[str, str], key: str, dtype) -> np.ndarray:
    value = tree.get(key, "").strip()
    return np.array(value.split(), dtype=np.float64).astype(dtype) if value else np.empty(0, dtype=dtype)


def parse(model_text: bytes | str) -> tuple[int, float, list[dict]]:
    """(number of features, expected value, trees as arrays) of a LightGBM model text.

    Raises LinearTreesRefused for linear trees, UnsupportedModel for what only pred_contrib covers.
    """
    text = model_text.decode("utf-8") if isinstance(model_text, (bytes, bytearray)) else model_text
    header, trees = _trees(text)
    if any(tree.get("is_linear", "0").strip() == "1" for tree in trees):
        raise LinearTreesRefused(
            "the model has linear trees (linear_tree=true): [explain] reasons and attribution drift need constant "
            "leaves. Train without linear_tree in [model.params], or remove the [explain] section"
        )
    if "max_feature_idx" not in header or not trees:
        raise BadModel("not a LightGBM model text (no max_feature_idx or no trees)")
    if header.get("num_tree_per_iteration", "1").strip() != "1":
        raise UnsupportedModel("more than one tree per iteration (multiclass)")
    if "average_output" in header:
        raise UnsupportedModel("averaged output (boosting = rf)")
    features = int(header["max_feature_idx"]) + 1
    parsed, expected = [], 0.0
    for tree in trees:
        leaves = int(tree["num_leaves"])
        arrays = {
            "leaf_value": _numbers(tree, "leaf_value", np.float64),
            "leaf_count": _numbers(tree, "leaf_count", np.float64),
            "internal_count": _numbers(tree, "internal_count", np.float64),
            "split_feature": _numbers(tree, "split_feature", np.int32),
            "decision_type": _numbers(tree, "decision_type", np.int8),
            "threshold": _numbers(tree, "threshold", np.float64),
            "left_child": _numbers(tree, "left_child", np.int32),
            "right_child": _numbers(tree, "right_child", np.int32),
            "cat_boundaries": _numbers(tree, "cat_boundaries", np.int32),
            "cat_threshold": _numbers(tree, "cat_threshold", np.uint32),
        }
        # Tree::ExpectedValue, in its order: sum over leaves of count / root count x value.
        if leaves == 1:
            value = float(arrays["leaf_value"][0])
        else:
            if (arrays["leaf_count"] <= 0).any() or (arrays["internal_count"] <= 0).any():
                raise UnsupportedModel("a tree with an empty node (count 0)")
            value = 0.0
            total = float(arrays["internal_count"][0])
            for count, leaf in zip(arrays["leaf_count"].tolist(), arrays["leaf_value"].tolist()):
                value += (count / total) * leaf
        expected += value  # PredictContrib adds each tree's in tree order
        parsed.append(arrays | {"num_leaves": leaves})
    return features, expected, parsed


_GAUSS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _gauss(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre points and weights on [0, 1]."""
    if points not in _GAUSS:
        x, w = np.polynomial.legendre.leggauss(points)
        _GAUSS[points] = ((x + 1.0) / 2.0, w / 2.0)
    return _GAUSS[points]


def _flatten(trees: list[dict]) -> _Forest:
    columns: dict[str, list] = {name: [] for name in ("depth", "ancestor", "is_left", "b", "leaf_value")}
    columns |= {name: [] for name in ("split_feature", "decision_type", "threshold", "cat_start", "cat_len")}
    tree_start, tree_points, tree_point_start, ys, ws, cat_bits = [0], [], [], [], [], []
    tree_table_start, inv_f0, inv_f1, has_deeper = [], [], [], []
    max_depth = max_points = 1
    for tree in trees:
        nodes = _preorder(tree)
        depth = max(node["depth"] for node in nodes)
        # Exact for the integrand's degree: below the most distinct features on any path (a
        # feature split on again adds no degree), often well under the depth.
        points = max(1, math.ceil(max(node["unique"] for node in nodes) / 2))
        y, w = _gauss(points)
        tree_point_start.append(len(ys))
        ys.extend(y.tolist())
        ws.extend(w.tolist())
        tree_points.append(points)
        boundaries, bits = tree["cat_boundaries"], tree["cat_threshold"]
        for node in nodes:
            for name in columns:
                if name not in ("cat_start", "cat_len"):
                    columns[name].append(node[name])
            if node["split_feature"] >= 0 and node["decision_type"] & 1:
                index = int(node["threshold"])
                columns["cat_start"].append(len(cat_bits) + int(boundaries[index]))
                columns["cat_len"].append(int(boundaries[index + 1] - boundaries[index]))
            else:
                columns["cat_start"].append(0)
                columns["cat_len"].append(0)
        cat_bits.extend(bits.tolist())
        # Reciprocals of each node's factor at the Gauss points, for a = 0 (b y) and a = 1 (1 - y + b y).
        b = np.array([node["b"] for node in nodes])[:, None]
        tree_table_start.append(sum(len(part) for part in inv_f0))
        inv_f0.append((1.0 / (b * y)).ravel())
        inv_f1.append((1.0 / (1.0 - y + b * y)).ravel())
        deeper = np.zeros(len(nodes), dtype=np.int8)
        deeper[[node["ancestor"] for node in nodes if node["ancestor"] >= 0]] = 1
        has_deeper.append(deeper)
        tree_start.append(tree_start[-1] + len(nodes))
        max_depth, max_points = max(max_depth, depth), max(max_points, points)
    dtypes = {"depth": np.int32, "ancestor": np.int32, "is_left": np.int8, "split_feature": np.int32}
    dtypes |= {"decision_type": np.int8, "cat_start": np.int32, "cat_len": np.int32}
    arrays = {
        name: np.ascontiguousarray(values, dtype=dtypes.get(name, np.float64)) for name, values in columns.items()
    }
    return _Forest(
        tree_start=np.array(tree_start, dtype=np.int32),
        tree_points=np.array(tree_points, dtype=np.int32),
        tree_point_start=np.array(tree_point_start, dtype=np.int32),
        ys=np.array(ys, dtype=np.float64),
        ws=np.array(ws, dtype=np.float64),
        cat_bits=np.array(cat_bits or [0], dtype=np.uint32),
        tree_table_start=np.array(tree_table_start, dtype=np.int32),
        inv_f0=np.concatenate(inv_f0),
        inv_f1=np.concatenate(inv_f1),
        has_deeper=np.concatenate(has_deeper),
        max_depth=max_depth,
        max_points=max_points,
        **arrays,
    )


def _preorder(tree: dict) -> list[dict]:
    """The tree's nodes root first, each with its parent (position in this list), the nearest
    ancestor whose incoming edge splits on the same feature, and the combined cover fraction b."""
    if tree["num_leaves"] == 1:
        return [_node(-1, -1, 0, 1.0, 0, float(tree["leaf_value"][0]), None, tree) | {"unique": 0}]
    out: list[dict] = []
    # (LightGBM node id: >= 0 internal, ~leaf for a leaf, parent position, is_left, depth)
    stack = [(0, -1, 0, 0)]
    while stack:
        node_id, parent, is_left, depth = stack.pop()
        count = tree["internal_count"][node_id] if node_id >= 0 else tree["leaf_count"][~node_id]
        ancestor, b = -1, 1.0
        if parent >= 0:
            feature = out[parent]["split_feature"]
            parent_count = float(tree["internal_count"][out[parent]["id"]])
            b = float(count) / parent_count  # TreeSHAP's zero fraction: data_count(child) / data_count(node)
            walk = parent
            while walk > 0:  # the nearest node below an edge on the same feature
                if out[out[walk]["parent"]]["split_feature"] == feature:
                    ancestor = walk
                    break
                walk = out[walk]["parent"]
            if ancestor >= 0:
                b *= out[ancestor]["b"]
        value = float(tree["leaf_value"][~node_id]) if node_id < 0 else 0.0
        out.append(_node(parent, ancestor, is_left, b, depth, value, node_id if node_id >= 0 else None, tree))
        out[-1]["id"] = node_id
        out[-1]["unique"] = 0 if parent < 0 else out[parent]["unique"] + (ancestor < 0)  # distinct features above
        if node_id >= 0:
            position = len(out) - 1
            stack.append((int(tree["right_child"][node_id]), position, 0, depth + 1))
            stack.append((int(tree["left_child"][node_id]), position, 1, depth + 1))
    return out


def _node(parent, ancestor, is_left, b, depth, value, internal, tree) -> dict:
    split = internal is not None
    return {
        "parent": parent,
        "ancestor": ancestor,
        "is_left": is_left,
        "b": b,
        "depth": depth,
        "leaf_value": value,
        "split_feature": int(tree["split_feature"][internal]) if split else -1,
        "decision_type": int(tree["decision_type"][internal]) if split else 0,
        "threshold": float(tree["threshold"][internal]) if split else 0.0,
    }


def _signature(lib: ctypes.CDLL):
    function = lib.driftline_linear_treeshap
    pointer = ctypes.c_void_p
    function.argtypes = [pointer, ctypes.c_int64, ctypes.c_int32, ctypes.c_int32, *[pointer] * 20]
    function.argtypes += (ctypes.c_int32, ctypes.c_int32, pointer)
    function.restype = ctypes.c_int
    return function


class LinearTreeShap:
    """A parsed model that computes pred_contrib's contributions with Linear TreeSHAP."""

    def __init__(self, model: bytes | str | tuple, library: ctypes.CDLL):
        """model: the model text, or what parse() returned for it."""
        self._features, self._expected, trees = model if isinstance(model, tuple) else parse(model)
        self._forest = _flatten(trees)
        self._function = _signature(library)

    def num_feature(self) -> int:
        return self._features

    def contributions(self, matrix: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """rows x (features + 1): each feature's contribution, then the expected value."""
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self._features:
            raise ValueError(f"expected a 2-D matrix with {self._features} columns, got shape {data.shape}")
        out = np.zeros((data.shape[0], self._features + 1), dtype=np.float64)
        parts = min(max(1, num_threads), max(1, len(data) // _ROWS_PER_PART))
        bounds = np.linspace(0, len(data), parts + 1).astype(int)
        if parts == 1:
            self._run(data, out)
        else:
            threads = [
                threading.Thread(target=self._run, args=(data[first:last], out[first:last]))
                for first, last in zip(bounds[:-1], bounds[1:])
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        out[:, -1] = self._expected
        return out

    def _run(self, data: np.ndarray, out: np.ndarray) -> None:
        f = self._forest
        arrays = [f.tree_start, f.tree_points, f.tree_point_start, f.ys, f.ws, f.depth, f.ancestor, f.is_left]
        arrays += [f.b, f.leaf_value, f.split_feature, f.decision_type, f.threshold, f.cat_start, f.cat_len, f.cat_bits]
        arrays += [f.tree_table_start, f.inv_f0, f.inv_f1, f.has_deeper]
        pointers = [array.ctypes.data for array in arrays]
        status = self._function(
            data.ctypes.data, len(data), self._features, len(f.tree_points), *pointers,
            f.max_depth, f.max_points, out.ctypes.data,
        )  # fmt: skip
        if status != 0:
            raise MemoryError("Linear TreeSHAP could not allocate its work space")


def for_model(model_text: bytes | str | None) -> LinearTreeShap | None:
    """Linear TreeSHAP for this model, or None where LightGBM's pred_contrib must do (no model text,
    a model outside what this covers, no C compiler: logged once). Raises LinearTreesRefused."""
    if model_text is None:
        return None
    try:
        parsed = parse(model_text)
    except UnsupportedModel as exc:
        log.info("Linear TreeSHAP does not cover this model (%s); using LightGBM's pred_contrib", exc)
        return None
    from driftline.scoring import native_build

    library = native_build.load("treeshap.c")
    return None if library is None else LinearTreeShap(parsed, library)
