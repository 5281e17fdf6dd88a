"""The Minari side: where datasets live, whether one exists, opening it, disk checks,
and staged writes (a dataset appears in the root only once it is whole)."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from bench.errors import DatasetError

#: Staging folder inside the Minari root for datasets being written.
STAGING = ".bench-staging"
#: Free space a write needs beyond its estimate: a fraction of it plus a fixed amount
#: (HDF5 metadata, Minari's json, the file system's own reserve).
SPACE_MARGIN_FRACTION = 0.1
SPACE_MARGIN_BYTES = 8 * 2**20


def minari_root() -> Path:
    """$MINARI_DATASETS_PATH, else ~/.minari/datasets (Minari's own rule)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def dataset_dir(minari_id: str) -> Path:
    """root/<namespace>/<name>-v<N>: the folder Minari reads (it holds data/ and metadata)."""
    return minari_root() / minari_id


def dataset_exists(minari_id: str) -> bool:
    return (dataset_dir(minari_id) / "data" / "metadata.json").is_file()


def open_dataset(minari_id: str):
    """minari.load_dataset with our errors: a missing or unreadable dataset is one line."""
    import minari

    if not dataset_exists(minari_id):
        raise DatasetError(f"dataset {minari_id} is not in the Minari root {minari_root()}")
    try:
        return minari.load_dataset(minari_id)
    except Exception as e:  # h5py/OSError/ValueError for corrupt files: all mean "unreadable"
        raise DatasetError(
            f"dataset {minari_id}: cannot be read ({type(e).__name__}: {e})"
        ) from None


def free_bytes(folder: Path) -> int:
    """Free bytes on the file system of `folder` (or of its nearest existing parent: the
    folder may not exist yet)."""
    probe = Path(folder).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def free_memory_bytes() -> int:
    """Memory the kernel can give this process now without swapping (MemAvailable of
    /proc/meminfo; elsewhere the physical memory, as os.sysconf reports it)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**63 - 1  # unknown: nothing is refused on this ground


def with_margin(need_bytes: int) -> int:
    """need_bytes plus the margin every space check adds."""
    return int(need_bytes * (1 + SPACE_MARGIN_FRACTION)) + SPACE_MARGIN_BYTES


def check_free_space(folder: Path, need_bytes: int, free: int | None = None) -> None:
    """Refuse a write when `folder`'s file system cannot hold ~need_bytes plus the margin
    (free: bytes known to be free, else shutil.disk_usage's): HDF5 crashes (segmentation
    fault) rather than raising when the disk fills up, so writes are checked before they start."""
    folder = Path(folder).absolute()
    if free is None:
        free = free_bytes(folder)
    need = with_margin(need_bytes)
    if free < need:
        raise DatasetError(
            f"not enough disk space in {folder}: need ~{need / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB free"
        )


def is_disk_full(e: BaseException) -> bool:
    """An OSError that means "no space left" (errno ENOSPC/EDQUOT, or HDF5's message)."""
    return isinstance(e, OSError) and (
        e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e)
    )


#: Folders staged_dataset created around a dataset it wrote (the Minari root, namespace folders),
#: by Minari id: discard_dataset removes them with the dataset when a later step fails.
_CREATED: dict[str, list[Path]] = {}


def _missing_dirs(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first: what mkdir(parents=True)
    would create."""
    missing = []
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """rmdir each folder (deepest first) that holds nothing but Minari's namespace metadata."""
    for d in folders:
        try:
            if {p.name for p in d.iterdir()} <= {"namespace_metadata.json"}:
                (d / "namespace_metadata.json").unlink(missing_ok=True)
                d.rmdir()
        except OSError:
            pass


def check_root_writable() -> None:
    """The Minari root can take a dataset (checked before a build shows any progress): a root
    under a regular file or on a read-only filesystem is one line; nothing is left behind."""
    root = minari_root()
    created = _missing_dirs(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".bench-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        reason = " ".join(str(e.strerror or e).split())
        raise DatasetError(
            f"cannot write to the Minari root {root} ({reason}); set MINARI_DATASETS_PATH to a "
            "writable folder"
        ) from None
    finally:
        _remove_if_empty(created)


@contextmanager
def staged_dataset(minari_id: str, force: bool = False, exclusive: bool = False):
    """Write a Minari dataset inside a staging root (the body runs with MINARI_DATASETS_PATH set
    to it), then rename it into the real root: an interrupted write never leaves a dataset that
    loads as if whole. With force, an existing dataset is replaced only once the new one is.
    A root that cannot be written is one line, before anything runs; folders made for a write
    that fails are removed. exclusive (imports): a dataset another process wrote under the same
    id meanwhile is not replaced without force (builds of a card write the same data, so the
    later one replaces the earlier)."""
    if dataset_exists(minari_id) and not force:
        raise DatasetError(f"dataset {minari_id} already exists (use --force to replace it)")
    root = minari_root()
    remove_orphans(root / STAGING)
    staging = root / STAGING / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    created = _missing_dirs(root)
    try:
        staging.mkdir(parents=True)
    except OSError as e:
        _remove_if_empty([root / STAGING, *created])
        reason = " ".join(str(e.strerror or e).split())
        raise DatasetError(
            f"cannot write to the Minari root {root} ({reason}); set MINARI_DATASETS_PATH to a "
            "writable folder"
        ) from None
    final = dataset_dir(minari_id)
    done = False
    try:
        with _minari_root_at(staging):
            yield staging
        created = _missing_dirs(final.parent) + created
        final.parent.mkdir(parents=True, exist_ok=True)
        _ensure_namespace(minari_id)
        if final.exists() and exclusive and not force:  # written by another process meanwhile
            raise DatasetError(
                f"dataset {minari_id} was written by another process meanwhile; use --force to "
                "replace it"
            )
        if final.exists():
            os.replace(final, staging / "old")
        os.replace(staging / minari_id, final)
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            (root / STAGING).rmdir()
        except OSError:
            pass
        if done:
            _CREATED[minari_id] = created
        else:
            _remove_if_empty(created)


def discard_dataset(minari_id: str) -> None:
    """Remove a dataset just written (a later step of its import failed) and the folders its
    write created: namespace folders (with their namespace_metadata.json) and the root."""
    shutil.rmtree(dataset_dir(minari_id), ignore_errors=True)
    _remove_if_empty(_CREATED.pop(minari_id, []))


def remove_orphans(folder: Path, prefix: str = "") -> None:
    """Delete the folders `<prefix><pid>-...` in `folder` whose writer process no longer exists
    (killed with kill -9, or by the kernel): staging roots of builds, perf's temp folders."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for d in folder.glob(f"{prefix}*-*"):
        pid = d.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def alive(pid: int) -> bool:
    """Whether process `pid` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _minari_root_at(path: Path):
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _ensure_namespace(minari_id: str) -> None:
    from minari.namespace import create_namespace, list_local_namespaces

    namespace = minari_id.rsplit("/", 1)[0] if "/" in minari_id else None
    if namespace and namespace not in list_local_namespaces():
        create_namespace(namespace)
