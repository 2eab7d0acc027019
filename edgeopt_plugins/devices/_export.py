"""Model files for devices measured elsewhere: the project builds a design and exports it.

A remote target (a phone, a board, an accelerator behind ``ssh``) runs its own
runtime; it gets the model as a file. Formats (:data:`EXPORT_FORMATS`):

- ``"torchscript"`` (``.pt``): ``torch.jit.trace`` of the model; loads with
  ``torch.jit.load`` in Python or libtorch (C++, mobile). PyTorch marks
  TorchScript deprecated in favour of ``torch.export`` but still runs it.
- ``"exported"`` (``.pt2``): ``torch.export.export``; loads with ``torch.export.load``.
- ``"onnx"`` (``.onnx``): ``torch.onnx.export``; needs the ``onnx`` package
  (``pip install onnx``); runs on ONNX Runtime, TensorRT, OpenVINO, ...

The file is written to a temporary name in its folder and renamed into place, so a
command that sees the path sees a complete file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from edgeopt_plugins.exceptions import InputError

__all__ = ["EXPORT_FORMATS", "export_model"]

#: Export format -> file suffix.
EXPORT_FORMATS = {"torchscript": ".pt", "exported": ".pt2", "onnx": ".onnx"}


def export_model(model: Any, example: Any, folder: str | os.PathLike[str], *, fmt: str = "torchscript",
                 stem: str = "model") -> Path:
    """Write ``model`` (traced on ``example``) to ``folder/stem<suffix>`` atomically; returns the path.

    Args:
        model: A ``torch.nn.Module`` in eval mode.
        example: Its input (a tensor), with the batch size the target runs.
        folder: Existing folder to write into.
        fmt: One of :data:`EXPORT_FORMATS`.
        stem: File name without suffix.

    Raises:
        InputError: for an unknown format, ONNX without the ``onnx`` package, or a
            model the exporter cannot handle (one line with PyTorch's reason).

    Example:
        >>> import tempfile, torch
        >>> from torch import nn
        >>> path = export_model(nn.Linear(4, 2).eval(), torch.zeros(1, 4), tempfile.mkdtemp())
        >>> path.name, torch.jit.load(path)(torch.zeros(1, 4)).shape
        ('model.pt', torch.Size([1, 2]))
    """
    import torch

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401 - torch.onnx.export needs it
        except ImportError:
            raise InputError("export format 'onnx' needs the onnx package (pip install onnx); "
                             "or use --export torchscript") from None
    target = Path(folder) / f"{stem}{EXPORT_FORMATS[fmt]}"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation and tracer notes of the exporters, not the user's concern
            if fmt == "torchscript":
                torch.jit.save(torch.jit.trace(model, example), tmp)
            elif fmt == "exported":
                torch.export.save(torch.export.export(model, (example,)), tmp)
            else:
                torch.onnx.export(model, (example,), tmp, dynamo=False)
        os.replace(tmp, target)
    except Exception as err:  # noqa: BLE001 - exporters raise many types; the user needs the reason
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputError(f"cannot export the model as {fmt} ({type(err).__name__}: {reason})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
