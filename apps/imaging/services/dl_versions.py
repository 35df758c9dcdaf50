"""DL versions of a conventional series, one per source: which source made which DL series.

A source is a registered model run at a noise-reduction factor (the engine's output, ``Series.dl_model`` and
``dl_factor``) or the vendor (a vendor-enhanced series uploaded by the site and linked). Everything that pairs a
conventional series with its DL version (reading assignments, QA gate, ROI measurements, exports) asks
``dl_version(series, source)`` with the study's source, never "any DL series of this image". No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from apps.enhancement_models import services as registry
from apps.enhancement_models.models import EnhancementModel
from apps.imaging.models import Series, SeriesSource, SeriesStatus, Version

VENDOR_LABEL = "vendor series uploaded by the sites"


@dataclass(frozen=True)
class DLSource:
    """Where a DL version comes from: ``model`` at ``factor``, or the sites' vendor series (no model)."""

    model: EnhancementModel | None = None
    factor: float | None = None

    @property
    def vendor(self) -> bool:
        return self.model is None

    @property
    def kind(self) -> str:
        return "vendor" if self.vendor else "model"

    @property
    def model_reference(self) -> str:
        """NAME@VERSION of the model (as READERSTUDY_ENHANCE_MODEL names a registered one); empty for vendor."""
        return "" if self.vendor else f"{self.model.name}@{self.model.version}"

    def __str__(self) -> str:
        if self.vendor:
            return VENDOR_LABEL
        return f"{self.model} at noise-reduction factor {self.factor:g}"

    def series_filter(self, prefix: str = "") -> Q:
        """A filter on DL series (or, with ``prefix``, on a relation to them) that made from this source."""
        if self.vendor:
            return Q(**{f"{prefix}source": SeriesSource.VENDOR})
        return Q(**{f"{prefix}source": SeriesSource.ENHANCED, f"{prefix}dl_model": self.model,
                    f"{prefix}dl_factor": self.factor})


VENDOR = DLSource()


def default_source() -> DLSource:
    """The deployment's default: READERSTUDY_ENHANCE_MODEL at READERSTUDY_ENHANCE_FACTOR (ValueError when that
    setting names no usable model)."""
    return DLSource(registry.default_model(), settings.ENHANCE_FACTOR)


def source_of(dl: Series) -> DLSource | None:
    """The source a DL series belongs to; None for a conventional series or an engine series of unknown model."""
    if dl.version != Version.DL:
        return None
    if dl.source == SeriesSource.VENDOR:
        return VENDOR
    if dl.dl_model_id is None or dl.dl_factor is None:
        return None
    return DLSource(dl.dl_model, dl.dl_factor)


def versions_of(conventional: Series):
    """Every DL version of a conventional series that is not rejected, whatever its source."""
    return Series.objects.filter(conventional=conventional, version=Version.DL).exclude(status=SeriesStatus.REJECTED)


def dl_version(conventional: Series, source: DLSource) -> Series | None:
    """The DL version of ``conventional`` made by ``source`` (not rejected), or None: the one question every
    pairing asks."""
    return versions_of(conventional).filter(source.series_filter()).order_by("pk").first()


def link(conventional: Series, dl: Series, source: DLSource, save: bool = True) -> Series:
    """Records ``dl`` as the DL version of ``conventional`` made by ``source`` (the caller holds the transaction)."""
    dl.conventional = conventional
    dl.dl_model, dl.dl_factor = source.model, (None if source.vendor else source.factor)
    if save:
        dl.save(update_fields=["conventional", "dl_model", "dl_factor"])
    return dl
