"""Blinding (design invariant 1): walk every endpoint a reader can reach in a study and look for leaks.

No response may name a site (name, code, pseudonym), a case, a patient, the study's admin title, or carry a
word, tag or model name that tells the DL version; the two versions of an image must be served with the same
headers and lengths, differing only in pixel values (and, for images, the display window derived from them).
"""

import io
import json
import re

import pydicom
import pytest

from apps.imaging.blinding import blind, encode, token_uid, volume_window
from apps.imaging.models import Instance, Series
from apps.studies.models import DEFAULT_ITEMS, ReaderStudy, ReadingTask, TaskPanel
from apps.studies.services import reading
from tests.studies.conftest import MODEL_NAME, build_world

pytestmark = pytest.mark.django_db

ALL_THREES = {key: 3 for key, _, _ in DEFAULT_ITEMS}
DISTINGUISHING_WORDS = re.compile(r"\bdl\b|enhanced|conventional|version|unet|deep.?learning", re.IGNORECASE)
IMAGE_VARYING_TAGS = {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
                      "WindowCenter", "WindowWidth", "PixelData"}
ALLOWED_TAGS = IMAGE_VARYING_TAGS | {
    "SOPClassUID", "Modality", "SeriesNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "PixelSpacing", "SliceThickness", "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleIntercept", "RescaleSlope",
}
IGNORED_HEADERS = {"Date", "Set-Cookie"}
CSRF_VALUE = re.compile(r'(?:csrfmiddlewaretoken" value|data-csrf-token)="([^"]+)"')


def forbidden_strings(world) -> list[str]:
    strings = [world.study.title, MODEL_NAME, "PID-12345", "Doe^Jane", "Nummer"]
    for site in world.sites:
        strings += [site.name, site.code, site.pseudonym]
    for case in world.cases:
        strings += [case.code, case.patient_key]
    for series in Series.objects.filter(case__in=world.cases):
        strings += [series.series_uid, series.study_uid, series.description]
    for instance in Instance.objects.filter(series__case__in=world.cases):
        strings += [instance.sop_uid, instance.file.name.rsplit("/", 1)[-1], instance.sha256]
    return [s for s in strings if s]


def opaque_tokens(text: str) -> set[str]:
    """The random strings the server issued that appear in a response: CSRF values and study, task and image tokens.

    They are random letters and digits, so one may spell a forbidden word by chance ('...UNEt...'); they are
    masked before the search. Only exact issued values are masked, so a leak can never hide behind them.
    """
    issued = set(CSRF_VALUE.findall(text))
    issued |= set(ReaderStudy.objects.values_list("token", flat=True))
    issued |= set(ReadingTask.objects.values_list("token", flat=True))
    issued |= set(TaskPanel.objects.values_list("image_token", flat=True))
    return {token for token in issued if token in text}


def masked(text: str) -> str:
    for token in sorted(opaque_tokens(text), key=len, reverse=True):
        text = text.replace(token, "T")
    return text


class Walker:
    """Fetches like the reader's browser would and checks every response on the way."""

    def __init__(self, client, world):
        self.client, self.forbidden, self.responses = client, forbidden_strings(world), []
        self.ranges = {}  # slices_url -> the whole stack in one range response

    def check(self, response, url):
        body = response.content.decode("latin-1")
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for text in (masked(body), masked(headers), masked(url)):
            for needle in self.forbidden:
                assert needle.lower() not in text.lower(), f"{url} leaks {needle!r}"
            match = DISTINGUISHING_WORDS.search(text)
            assert match is None, f"{url} contains {match.group(0)!r}"
        assert "ETag" not in response.headers and "Last-Modified" not in response.headers
        assert "Content-Disposition" not in response.headers
        self.responses.append((url, response))
        return response

    def get(self, url, **kwargs):
        return self.check(self.client.get(url, **kwargs), url)

    def send(self, method, url, data):
        call = getattr(self.client, method)
        return self.check(call(url, json.dumps(data), content_type="application/json"), url)


def comparable(response) -> dict:
    return {k: v for k, v in response.headers.items() if k not in IGNORED_HEADERS}


def walk_study(client, world, reader):
    """Every reader-reachable endpoint for one reader; returns per-task API bodies and image responses."""
    walker = Walker(client, world)
    client.force_login(reader)
    walker.get("/reading/")
    walker.get("/")
    first = walker.get(f"/reading/study/{world.study.token}/resume/")
    walker.get(first["Location"])
    tasks, images = {}, {}
    for task in reading.reader_tasks(reader).filter(study=world.study).order_by("position"):
        api = f"/api/reading/tasks/{task.token}/"
        walker.get(f"/reading/task/{task.token}/")
        body = walker.get(api).json()
        for panel in body["panels"]:
            for url in panel["image_urls"]:
                images[url] = walker.get(url)
            walker.ranges[panel["slices_url"]] = walker.get(
                f"{panel['slices_url']}?first=0&last={len(panel['image_urls']) - 1}")
        all_scores = {p["panel"]: ALL_THREES for p in body["panels"]}
        walker.send("put", api + "scores/", {"panel": "A", "scores": {"noise": 2}})
        walker.send("post", api + "submit/", {"scores": all_scores, "seconds_on_task": 4.0})
        body = walker.get(api).json()
        if body["calibration_scores_url"]:
            walker.get(body["calibration_scores_url"])
        tasks[task.pk] = (task, body)
    walker.get(f"/reading/study/{world.study.token}/resume/")
    walker.get("/reading/")
    walker.get("/reading/img/notatoken/0.dcm")
    walker.get("/api/reading/tasks/notatoken/")
    return walker, tasks, images


def without_tokens(body: dict) -> dict:
    """The task JSON with its opaque tokens and order-dependent links masked; so is `review`, which says whether the
    reader had submitted every task when the body was fetched (the walk fetches each body right after its submit)."""
    text = json.dumps({k: v for k, v in body.items() if k not in {"position", "next_url", "next_task_api",
                                                                  "prev_url", "token", "review"}})
    return json.loads(re.sub(r"/reading/img/[A-Za-z0-9_-]{22}/", "/reading/img/T/", text))


def image_tags(data: bytes) -> dict:
    ds = pydicom.dcmread(io.BytesIO(data))
    return {element.keyword: element.value for element in ds}


def assert_versions_alike(client, walker, tasks, images):
    by_image = {}
    for task, body in tasks.values():
        by_image.setdefault((task.case_id, task.sequence), []).append((task, body))
    compared = 0
    for pair in by_image.values():
        if len(pair) != 2:
            continue
        (task_a, body_a), (task_b, body_b) = pair
        assert {task_a.version, task_b.version} == {"conventional", "dl"}
        assert without_tokens(body_a) == without_tokens(body_b)
        page_a = client.get(f"/reading/task/{task_a.token}/")
        page_b = client.get(f"/reading/task/{task_b.token}/")
        assert len(page_a.content) == len(page_b.content)
        assert comparable(page_a) == comparable(page_b)
        for url_a, url_b in zip(body_a["panels"][0]["image_urls"], body_b["panels"][0]["image_urls"], strict=True):
            assert_images_alike(images[url_a], images[url_b])
        range_a, range_b = (walker.ranges[body["panels"][0]["slices_url"]] for body in (body_a, body_b))
        assert comparable(range_a).keys() == comparable(range_b).keys()
        assert {k: v for k, v in comparable(range_a).items() if k != "Content-Type"} == {
            k: v for k, v in comparable(range_b).items() if k != "Content-Type"}
        assert len(range_a.content) == len(range_b.content)
        compared += 1
    assert compared > 0


def assert_images_alike(image_a, image_b) -> None:
    """Two served slices of the two versions: same response headers, size and minimal DICOM header; other pixels."""
    assert comparable(image_a) == comparable(image_b)
    assert len(image_a.content) == len(image_b.content)
    tags_a, tags_b = image_tags(image_a.content), image_tags(image_b.content)
    assert set(tags_a) == set(tags_b) and set(tags_a) <= ALLOWED_TAGS
    assert {k: v for k, v in tags_a.items() if k not in IMAGE_VARYING_TAGS} == {
        k: v for k, v in tags_b.items() if k not in IMAGE_VARYING_TAGS
    }
    assert tags_a["PixelData"] != tags_b["PixelData"]


def test_single_mode_reader_endpoints_leak_nothing(client, world):
    for reader in world.readers:
        walker, tasks, images = walk_study(client, world, reader)
        assert images and all(r.status_code == 200 for r in images.values())
        for response in images.values():
            assert response["Content-Type"] == "application/dicom"
            assert response["Cache-Control"] == "private, no-store"
            assert int(response["Content-Length"]) == len(response.content)
        assert_versions_alike(client, walker, tasks, images)


def range_parts(response) -> list[bytes]:
    """The application/dicom parts of a range response, split by each part's Content-Length."""
    content_type = response["Content-Type"]
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    boundary = content_type.rsplit("boundary=", 1)[1].encode()
    body, parts = response.content, []
    while not body.startswith(b"--" + boundary + b"--"):
        head, _, rest = body.partition(b"\r\n\r\n")
        assert head.startswith(b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        parts.append(rest[:length])
        assert rest[length:length + 2] == b"\r\n"
        body = rest[length + 2:]
    assert body == b"--" + boundary + b"--\r\n"
    return parts


def test_a_range_serves_exactly_the_slices_served_one_by_one(client, world):
    """The viewer loads stacks in ranges (issue 12, item 6): each part is byte for byte the single-slice response,
    so the range path blinds exactly as the per-slice path does, checked once per request and never cached."""
    for reader in world.readers:
        walker, _, images = walk_study(client, world, reader)
        for slices_url, response in walker.ranges.items():
            assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
            token = slices_url.split("/")[-3]
            singles = sorted((url for url in images if f"/img/{token}/" in url),
                             key=lambda url: int(url.rsplit("/", 1)[1].removesuffix(".dcm")))
            assert range_parts(response) == [images[url].content for url in singles]
            assert len(singles) == 3


def test_a_random_token_that_spells_a_forbidden_word_is_not_a_leak_but_a_word_beside_it_is(client, world):
    """Tokens are random, so one in a few hundred thousand spells 'unet' or '-dl-'; that must not fail the walk."""
    reader = world.readers[0]
    task = reading.reader_tasks(reader).filter(study=world.study).order_by("position").first()
    token = "x-dl-UNEt_Version00001"
    ReadingTask.objects.filter(pk=task.pk).update(token=token)
    panel = task.panels.first()
    TaskPanel.objects.filter(pk=panel.pk).update(image_token="ENHANCED_conventional0")
    walk_study(client, world, reader)

    walker = Walker(client, world)
    leaky = client.get(f"/api/reading/tasks/{token}/")
    assert leaky.status_code == 200
    leaky.content = leaky.content.replace(b'"panels"', b'"unet_panels"')
    with pytest.raises(AssertionError, match="unet"):
        walker.check(leaky, f"/api/reading/tasks/{token}/")


def test_paired_mode_and_calibration_endpoints_leak_nothing(client, db):
    paired = build_world(mode="paired", calibration=1)
    for reader in paired.readers:
        _, tasks, images = walk_study(client, paired, reader)
        sizes = {len(r.content) for r in images.values()}
        assert len(sizes) == 1
        header_sets = {tuple(sorted(comparable(r).items())) for r in images.values()}
        assert len(header_sets) == 1


def test_the_filter_alone_makes_identical_headers_for_different_sources():
    """Blinding is a property of the filter, whatever the stored headers say (rescale, bits, descriptions)."""
    import numpy as np

    from tests.factories import mr_dataset

    rng = np.random.default_rng(0)
    plain = mr_dataset(8, 8, 0, rng.integers(0, 4000, (8, 8)))
    other = mr_dataset(8, 8, 0, rng.integers(0, 40, (8, 8)), RescaleSlope=2.5, RescaleIntercept=-3,
                       SeriesDescription="DL enhanced", SoftwareVersions=MODEL_NAME, BitsStored=16, HighBit=15)
    a = encode(blind(plain, "a" * 22, 0, volume_window([plain.pixel_array])))
    b = encode(blind(other, "b" * 22, 0, volume_window([other.pixel_array])))
    assert len(a) == len(b)
    assert MODEL_NAME.encode() not in b and b"Doe" not in b and b"PID" not in b
    assert len(token_uid("x" * 22, "study")) == len(token_uid("y" * 22, "sop:12")) == 43


DEIDENTIFICATION_TAGS = ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
                         "LongitudinalTemporalInformationModified")


def test_the_deidentification_record_is_stored_but_never_served(client, world):
    """Every stored instance keeps the standard's record (113100 and the options applied, 113101 among them);
    the images a reader fetches carry none of it: no group 0012 element, no code, no method meaning."""
    stored = Instance.objects.filter(series__case__in=world.cases).first()
    with stored.file.open("rb") as handle:
        header = pydicom.dcmread(handle)
    assert header.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in header.DeidentificationMethodCodeSequence] == ["113100", "113101", "113105",
                                                                                        "113107"]
    reader = world.readers[0]
    _, _, images = walk_study(client, world, reader)
    assert images
    for response in images.values():
        served = pydicom.dcmread(io.BytesIO(response.content))
        assert not [e for e in served.iterall() if e.tag.group == 0x0012]
        assert not [k for k in DEIDENTIFICATION_TAGS if k in served]
        for code in ("113100", "113101", "113105", "113107", "Confidentiality", "Option"):
            assert code.encode() not in response.content

