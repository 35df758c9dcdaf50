"""The input contract of an enhancement model: what the platform feeds it and what it expects back.

Every model, the built-in CE U-Net and a registered ONNX file alike, is run slice by slice on a volume
``(Z, Y, X)``: for each slice the platform stacks ``slices`` neighbouring slices (the centre one is enhanced;
neighbours past the ends repeat the end slice) into ``image (N, slices, H, W)`` float32, divided by the
series' 99th percentile (``normalisation="p99"``) or as stored (``"none"``). Matrices larger than
``max_matrix`` are cut into overlapping tiles; ``H, W`` are padded (reflect, bottom and right) to multiples of
``pad_multiple`` and the output is cropped back. With ``context_input`` the model also gets
``context (N, 10)``, the normalised acquisition parameters and noise-reduction factor (``context.CONTEXT_FIELDS``).
The model returns ``(N, 1, H, W)`` float32: its estimate of the clean centre slice, in the same units as its
input. The platform undoes the normalisation and keeps ``1/factor`` of the input's deviation from the
estimate (with a noise floor where there is no signal, ``inference.magnitude_with_floor``), so a job's
noise-reduction factor means the same for every model. No torch, no Django: web processes read it.
"""

from __future__ import annotations

from typing import NamedTuple

NORMALISATIONS = ("p99", "none")
# Tiles overlap by 32 pixels on each side (inference.TILE_OVERLAP), so a tile must be well above 64.
MIN_MATRIX = 128
MAX_MATRIX = 4096
MAX_SLICES = 15
MAX_PAD_MULTIPLE = 256


class InputContract(NamedTuple):
    """How the platform runs a model; see the module docstring."""

    slices: int = 3
    normalisation: str = "p99"
    max_matrix: int = 768
    pad_multiple: int = 1
    context_input: bool = False

    def problems(self) -> list[str]:
        """What is wrong with these values, in words; empty when they can be run."""
        found = []
        if not isinstance(self.slices, int) or not 1 <= self.slices <= MAX_SLICES or self.slices % 2 == 0:
            found.append(f"slices must be an odd number from 1 to {MAX_SLICES}, got {self.slices!r}")
        if self.normalisation not in NORMALISATIONS:
            found.append(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {self.normalisation!r}")
        if not isinstance(self.max_matrix, int) or not MIN_MATRIX <= self.max_matrix <= MAX_MATRIX:
            found.append(f"max_matrix must be from {MIN_MATRIX} to {MAX_MATRIX}, got {self.max_matrix!r}")
        if not isinstance(self.pad_multiple, int) or not 1 <= self.pad_multiple <= MAX_PAD_MULTIPLE:
            found.append(f"pad_multiple must be from 1 to {MAX_PAD_MULTIPLE}, got {self.pad_multiple!r}")
        elif isinstance(self.max_matrix, int) and self.max_matrix % self.pad_multiple:
            found.append(f"max_matrix ({self.max_matrix}) must be a multiple of pad_multiple ({self.pad_multiple})")
        return found

    def checked(self) -> InputContract:
        """Itself; ``ValueError`` naming every bad value."""
        found = self.problems()
        if found:
            raise ValueError("; ".join(found))
        return self

    def as_dict(self) -> dict[str, int | str | bool]:
        return self._asdict()


# The shipped CE U-Net (every ``weights/*.pt``): 3 slices, 99th-percentile scale, 768 tiles, 4 poolings (16),
# acquisition context. Its ONNX export (``onnx_export``) has exactly this contract.
BUILT_IN_CONTRACT = InputContract(slices=3, normalisation="p99", max_matrix=768, pad_multiple=16, context_input=True)
