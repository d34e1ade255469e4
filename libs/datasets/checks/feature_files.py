"""Feature files of one config as a checker sees them: paths, cheap shapes, safe full reads."""
from __future__ import annotations

import os
import zipfile
from typing import Any, Dict, List, Tuple

import numpy as np

# what a corrupt, truncated or object-holding feature file raises (allow_pickle stays False)
READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, RuntimeError)


class FeatureFiles:
    """Feature files of one config: paths, cheap shapes, full reads (docs/reference.md §2.4)."""

    def __init__(self, name: str, ds: Dict[str, Any]) -> None:
        self.name = name
        self.prefix = ds.get("file_prefix") or ""
        self.ext = ds.get("file_ext") or ""
        folder = ds["feat_folder"]
        self.h5_file = folder if name == "anet" and ".hdf5" in str(folder) else None
        if name == "ego4d" and isinstance(folder, (list, tuple)):
            self.folders = [str(f) for f in folder]
        else:
            self.folders = [str(folder)]
        self._h5 = None

    def close(self) -> None:
        """Closes the HDF5 file if one was opened."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def missing_locations(self) -> List[str]:
        """Folders (or the HDF5 file) that do not exist."""
        return [f for f in self.folders if not os.path.exists(f)]

    def paths(self, video_id: str) -> List[str]:
        """The file (one per folder) or the HDF5 dataset of a video."""
        if self.h5_file:
            return [f"{self.h5_file}[{self.prefix + video_id}]"]
        return [os.path.join(f, self.prefix + video_id + self.ext) for f in self.folders]

    def _h5file(self):
        if self._h5 is None:
            import h5py  # only for this format
            self._h5 = h5py.File(self.h5_file, "r")
        return self._h5

    def exists(self, video_id: str) -> bool:
        """Whether the video has its features (in every folder for ego4d)."""
        if self.h5_file:
            return (self.prefix + video_id) in self._h5file()
        return all(os.path.isfile(p) for p in self.paths(video_id))

    def stored_ids(self) -> List[str]:
        """Video ids of the stored files (files present in every folder for ego4d)."""
        if self.h5_file:
            keys = list(self._h5file().keys())
            return [k[len(self.prefix):] for k in keys if k.startswith(self.prefix)]
        per_folder = []
        for folder in self.folders:
            names = [n for n in os.listdir(folder)
                     if n.startswith(self.prefix) and n.endswith(self.ext)]
            per_folder.append({n[len(self.prefix):len(n) - len(self.ext)] for n in names})
        return sorted(set.union(*per_folder)) if per_folder else []

    def shapes(self, video_id: str) -> List[Tuple[int, ...]]:
        """Array shapes without reading the data where the format allows it (one per folder)."""
        if self.h5_file:
            return [tuple(self._h5file()[self.prefix + video_id].shape)]
        return [file_shape(p) for p in self.paths(video_id)]

    def load(self, video_id: str) -> np.ndarray:
        """All values, (T, sum C) for ego4d's folders (only used for the NaN/inf scan)."""
        if self.h5_file:
            return np.asarray(self._h5file()[self.prefix + video_id][()])
        parts = [file_array(p) for p in self.paths(video_id)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def finite(self, video_id: str) -> bool:
        """Whether every value is finite; an unreadable file counts as not finite."""
        try:
            return bool(np.isfinite(self.load(video_id)).all())
        except READ_ERRORS:
            return False


def file_shape(path: str) -> Tuple[int, ...]:
    """Shape of the array in an .npy / .npz ('feats') / .pt file, reading only headers if it can."""
    if path.endswith(".npz"):
        # read the header of the 'feats' member only, not the (maybe compressed) data
        with zipfile.ZipFile(path) as zf, zf.open("feats.npy") as member:
            version = np.lib.format.read_magic(member)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)(member)
            return tuple(header[0])
    if path.endswith(".pt"):
        return tuple(file_array(path).shape)
    return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)


def file_array(path: str) -> np.ndarray:
    """The array of an .npy / .npz ('feats') / .pt file; pickled objects are never loaded."""
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["feats"])
    if path.endswith(".pt"):
        import torch  # ego4d may store torch tensors
        return torch.load(path, map_location="cpu", weights_only=True).numpy()
    return np.load(path, allow_pickle=False)
