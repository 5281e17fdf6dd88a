"""Reading the torch files bench is handed (checkpoints, kept policies, behavior weights)
without unpickling them.

A `.pt` file is a pickle: loading it with `weights_only=False` runs whatever code its author put
in it. Files bench reads come from folders anyone may have written (a run folder copied from
another machine, a card's behavior file), so every one is read with `weights_only=True`, which
accepts tensors and plain containers and values (dict, list, tuple, str, int, float, bool,
None) and refuses everything else before any of it runs. What bench writes holds only those.
"""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, one_line

#: How torch's weights-only unpickler starts the message of a file it refuses.
_REFUSED = "Weights only load failed"
#: What its message says when the file asks for an object it does not allow.
_OBJECTS = ("GLOBAL", "Can only build", "Can only create new object")
#: How a torch file (a zip archive) and a pickle of protocol 2 or later start.
_PICKLE_STARTS = (b"PK", b"\x80")


def _asks_for_objects(path: Path | str, message: str) -> bool:
    """Whether the weights-only unpickler refused a pickle (as opposed to bytes that are no
    pickle at all): the message names a global or class, or the file starts like one."""
    if any(word in message for word in _OBJECTS):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(2).startswith(_PICKLE_STARTS)
    except OSError:
        return False


def refusal(path: Path | str, what: str) -> str:
    """The line for a file that holds more than tensors and plain values."""
    return (
        f"{what} {path} holds Python objects other than tensors and plain values: loading it "
        "may execute code, so it was not loaded"
    )


def load_torch(path: Path | str, what: str, map_location: Any = "cpu") -> Any:
    """torch.load(path, weights_only=True), with one BenchError line for a file that is missing,
    unreadable, or holds anything but tensors and plain values (nothing of it is executed).
    `what` names the file in the message (e.g. "kept policy")."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if _REFUSED in str(e) and _asks_for_objects(path, str(e)):
            raise BenchError(refusal(path, what)) from None
        raise BenchError(f"cannot read {what} {path} (not a torch file)") from None
    except FileNotFoundError:
        raise BenchError(f"cannot read {what} {path} (no such file)") from None
    except IsADirectoryError:
        raise BenchError(f"cannot read {what} {path} (is a folder)") from None
    except OSError as e:
        raise BenchError(f"cannot read {what} {path} ({one_line(e.strerror or e)})") from None
    except Exception as e:  # noqa: BLE001 - torch raises several kinds for a damaged file
        raise BenchError(
            f"cannot read {what} {path} ({type(e).__name__}: {one_line(e)[:200]})"
        ) from None


def plain(x: Any) -> Any:
    """x with what weights_only=True cannot read made readable: numpy scalars as Python numbers,
    numpy arrays as tensors, dataclasses as dicts. Dicts, lists and tuples are walked; one that
    needs no change is returned as it is (a state_dict keeps its type and its _metadata)."""
    if isinstance(x, np.generic):  # before float: np.float64 is a float, pickled as numpy's
        return x.item()
    if isinstance(x, torch.Tensor | str | bytes | bool | int | float | type(None)):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x).copy())
    if isinstance(x, dict):
        new = {k: plain(v) for k, v in x.items()}
        return x if all(new[k] is v for k, v in x.items()) else new
    if isinstance(x, list | tuple):
        items = [plain(v) for v in x]
        if all(a is b for a, b in zip(items, x, strict=True)):
            return x
        return items if isinstance(x, list) else tuple(items)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return plain(dataclasses.asdict(x))
    return x
