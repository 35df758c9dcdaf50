"""Browser benchmark of the reading page: headless Chromium against gunicorn on loopback.

Builds a database and image store in a temporary folder (30-slice 512 x 512 brain-phantom series, one
conventional/DL pair per case, single mode), collects the built frontend, starts gunicorn, logs readers in
through the login page, and measures in the page (performance.now(), from the viewer's IMAGE_RENDERED event):

1. time to first image of a 30-slice 512^2 series: from navigation start to the first rendered slice, with a
   cold browser cache (new context) and warm (reload); also until all 30 slices are in the viewer's cache;
   baseline in the same run: a static page showing one 512^2 PNG of the same slice from the same server;
2. submit -> next image fully rendered, with the next task prefetched while scoring (the default), against
   the same with prefetch disabled (`?prefetch=0`), and with WebGL forced (`?render=webgl`, informational:
   this machine has no GPU, so WebGL is SwiftShader's software emulation);
3. a large series (issue 12, item 6): a 176-slice 256^2 T1W post-contrast series (the paper's 3D sequence), cold
   browser cache each run: first image, the 21 slices around the shown one cached, all 176 slices in the viewer's
   cache ("fully scrollable"), and End -> last slice rendered once they are; loaded in ranges of 16 slices from the
   shown one outwards (the default: one request and one access check per range) against one request per slice
   from the shown one outwards (`?load=slice`, the path before), single and paired (both versions side by side,
   352 slices), in turns in the same run, beside the 30-slice figures of 1. Its series' display windows are computed
   at build time, as ingest stores them. Also the server's own cost in-process (Django's test client, no browser):
   the whole stack served slice by slice against in ranges.

    .venv/bin/python benchmarks/reading_browser.py [--cases 4] [--runs 5] [--only-large]

Needs /usr/bin/chromium and frontend/dist (cd frontend && npm ci && npm run build).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.sandbox import free_port, private_environment, start_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 850}
SLICES, SIZE = 30, 512
LARGE_SLICES, LARGE_SIZE = 176, 256
LARGE_VARIANTS = {  # label -> (reading mode, query string)
    "single, ranges of 16 slices, outwards (now)": ("single", ""),
    "single, one request per slice, outwards (before)": ("single", "?load=slice"),
    "paired (A and B: 352 slices), ranges (now)": ("paired", ""),
    "paired (A and B: 352 slices), per slice (before)": ("paired", "?load=slice"),
}
PASSWORD = "bench-password-123"
MODES = {  # reader label -> query string
    "prefetch": "",
    "no prefetch (baseline)": "?prefetch=0",
    "prefetch, WebGL forced": "?render=webgl",
}
BASELINE_PAGE = """<!doctype html><meta charset="utf-8"><title>baseline</title>
<body style="margin:0;background:#000"><img id="slice" src="slice.png" width="512" height="512">
<script>document.getElementById('slice').decode().then(() => requestAnimationFrame(() => {
  window.__firstImageMs = performance.now(); }));</script></body>"""



def build(cases: int) -> dict:
    """One reader per mode at one site, `cases` cases of another site read by all of them."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    from apps.studies.models import ReadingTask
    from apps.studies.services import definition
    from tests.e2e.world import _series_pair, phantom_volume
    from tests.factories import CaseFactory, InstitutionFactory, ReaderFactory, ReaderStudyFactory

    reader_site = InstitutionFactory(name="Reading Site", code="rs", pseudonym="RS")
    case_site = InstitutionFactory(name="Imaging Site", code="is", pseudonym="IS")
    readers = {}
    for n, mode in enumerate(MODES):
        user = ReaderFactory(institution=reader_site, username=f"bench{n}", pseudonym=f"B{n}")
        user.set_password(PASSWORD)
        user.save()
        readers[mode] = user
    case_list = []
    for n in range(cases):
        case = CaseFactory(institution=case_site, code=f"BR-{n:03d}")
        _series_pair(case, "T2W", SLICES, SIZE, seed=5)  # one phantom volume, cached: build time stays low
        case_list.append(case)
    study = ReaderStudyFactory(title="Browser benchmark", mode="single", sequences=["T2W"],
                               readers_per_case=len(readers), min_distance=1)
    definition.set_readers(study, list(readers.values()))
    definition.set_cases(study, case_list)
    definition.generate(study)
    definition.open_for_reading(study)

    baseline_dir = Path(settings.STATIC_ROOT) / "bench"
    baseline_dir.mkdir(parents=True, exist_ok=True)
    write_png(phantom_volume(SLICES, SIZE, 5)[SLICES // 2], baseline_dir / "slice.png")
    (baseline_dir / "index.html").write_text(BASELINE_PAGE)

    tasks = {mode: list(ReadingTask.objects.filter(reader=user).order_by("position").values_list("token", flat=True))
             for mode, user in readers.items()}
    large = build_large(reader_site, case_site)
    return {"usernames": {mode: user.username for mode, user in readers.items()}, "tasks": tasks, "large": large,
            "server": server_cost(large["single"], runs=3)}


def server_cost(large: dict, runs: int) -> dict[str, list[float]]:
    """ms per slice to serve the whole large stack in-process (Django's test client: middleware, session, access
    check, read, blinding filter; no HTTP, no browser), one request per slice against ranges of 16."""
    from django.test import Client

    from apps.accounts.models import User
    from apps.studies.services import reading

    reader = User.objects.get(username=large["username"])
    client = Client()
    client.force_login(reader)
    panel = reading.task_payload(reading.get_task(reader, large["token"]))["panels"][0]
    out = {"per slice": [], "ranges of 16": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        for url in panel["image_urls"]:
            assert client.get(url, HTTP_HOST="127.0.0.1").status_code == 200
        out["per slice"].append(1000 * (time.perf_counter() - t0) / LARGE_SLICES)
        t0 = time.perf_counter()
        for first in range(0, LARGE_SLICES, 16):
            last = min(LARGE_SLICES, first + 16) - 1
            response = client.get(f"{panel['slices_url']}?first={first}&last={last}", HTTP_HOST="127.0.0.1")
            assert response.status_code == 200
        out["ranges of 16"].append(1000 * (time.perf_counter() - t0) / LARGE_SLICES)
    return out


def build_large(reader_site, case_site) -> dict:
    """One case with a 176-slice 256^2 T1W post-contrast pair, read by one reader in single mode and another in
    paired mode: reading mode -> {username, token of the first task}."""
    from apps.imaging.services import windows
    from apps.studies.models import ReadingTask
    from apps.studies.services import definition
    from tests.e2e.world import _series_pair
    from tests.factories import CaseFactory, ReaderFactory, ReaderStudyFactory

    case = CaseFactory(institution=case_site, code="BR-LARGE")
    for series in _series_pair(case, "T1W_POST", LARGE_SLICES, LARGE_SIZE, seed=7):
        windows.series_window(series)  # as ingest stores it
    out = {}
    for mode in ("single", "paired"):
        user = ReaderFactory(institution=reader_site, username=f"bench-large-{mode}", pseudonym=f"BL-{mode}")
        user.set_password(PASSWORD)
        user.save()
        study = ReaderStudyFactory(title=f"Large series, {mode}", mode=mode, sequences=["T1W_POST"],
                                   readers_per_case=1, min_distance=1)
        definition.set_readers(study, [user])
        definition.set_cases(study, [case])
        definition.generate(study)
        definition.open_for_reading(study)
        token = ReadingTask.objects.filter(reader=user).order_by("position").values_list("token", flat=True).first()
        out[mode] = {"username": user.username, "token": token}
    return out


def large_runs(browser, base: str, large: dict, runs: int) -> dict[str, dict[str, list[float]]]:
    """Cold browser cache each run; the variants take turns, so all see the same server state."""
    out = {order: {"first": [], "near": [], "stack": [], "last": []} for order in LARGE_VARIANTS}
    last = f'.rs-pane[data-panel="A"][data-slice="{LARGE_SLICES}"]'
    for _ in range(runs):
        for order, (mode, query) in LARGE_VARIANTS.items():
            context = browser.new_context(viewport=VIEWPORT, base_url=base)
            page = context.new_page()
            login(page, large[mode]["username"])
            page.goto(f"/reading/task/{large[mode]['token']}/{query}")
            m = wait_first_image(page)
            out[order]["first"].append(m["firstImageMs"])
            out[order]["near"].append(m["nearLoadedMs"])
            out[order]["stack"].append(m["stackLoadedMs"])
            renders = int(page.get_attribute('.rs-pane[data-panel="A"]', "data-render-count"))
            t0 = time.perf_counter()
            page.keyboard.press("End")
            page.wait_for_selector(last, timeout=10_000)
            page.wait_for_function(
                "(n) => Number(document.querySelector('.rs-pane[data-panel=\"A\"]').dataset.renderCount) > n",
                arg=renders, timeout=10_000)
            out[order]["last"].append(1000 * (time.perf_counter() - t0))
            context.close()
    return out


def write_png(plane: np.ndarray, path: Path) -> None:
    from PIL import Image

    scaled = np.clip(255.0 * plane / max(float(plane.max()), 1.0), 0, 255).astype(np.uint8)
    Image.fromarray(scaled, mode="L").save(path)


def login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state("domcontentloaded")


def wait_first_image(page) -> dict:
    page.wait_for_selector('#reading-app[data-state="ready"]', timeout=60_000)
    page.wait_for_function("() => window.__readerMetrics && window.__readerMetrics.firstImageMs !== null",
                           timeout=60_000)
    page.wait_for_function("() => window.__readerMetrics.stackLoadedMs !== null", timeout=60_000)
    return page.evaluate("() => ({ ...window.__readerMetrics })")


def first_image_runs(browser, base: str, username: str, token: str, runs: int) -> dict[str, list[float]]:
    cold, warm, stack, rendering = [], [], [], None
    for _ in range(runs):
        context = browser.new_context(viewport=VIEWPORT, base_url=base)
        page = context.new_page()
        login(page, username)
        page.goto(f"/reading/task/{token}/")
        m = wait_first_image(page)
        cold.append(m["firstImageMs"])
        stack.append(m["stackLoadedMs"])
        rendering = m["rendering"]
        page.reload()
        warm.append(wait_first_image(page)["firstImageMs"])
        context.close()
    baseline = []
    for _ in range(runs):
        context = browser.new_context(viewport=VIEWPORT, base_url=base)
        page = context.new_page()
        page.goto("/static/bench/index.html")
        page.wait_for_function("() => window.__firstImageMs !== undefined", timeout=30_000)
        baseline.append(page.evaluate("() => window.__firstImageMs"))
        context.close()
    return {"cold": cold, "warm": warm, "stack": stack, "baseline": baseline, "rendering": rendering}


def transitions(browser, base: str, username: str, tokens: list[str], query: str, prefetch: bool) -> dict:
    context = browser.new_context(viewport=VIEWPORT, base_url=base)
    page = context.new_page()
    login(page, username)
    page.goto(f"/reading/task/{tokens[0]}/{query}")
    if prefetch:
        wait_first_image(page)
    else:
        page.wait_for_selector('#reading-app[data-state="ready"]')
    results = []
    for n, next_token in enumerate(tokens[1:], start=1):
        if prefetch:
            page.wait_for_selector(f'#reading-app[data-prefetched="{next_token}"]', timeout=60_000)
        else:
            page.wait_for_timeout(1500)  # as long as a reader scores, at least: nothing is fetched meanwhile
        for key in "3434343":
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function("(n) => window.__readerMetrics.transitions.length === n", arg=n, timeout=60_000)
        results.append(page.evaluate("(n) => window.__readerMetrics.transitions[n - 1]", n))
    rendering = page.get_attribute("#reading-app", "data-rendering")
    context.close()
    return {"ms": [r["ms"] for r in results], "submit_ms": [r["submitMs"] for r in results],
            "prefetched": [r["prefetched"] for r in results], "rendering": rendering}



def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):.0f} ms, min {min(values):.0f}, max {max(values):.0f} "
            f"(n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=4, help="cases; each reader reads 2 x cases tasks")
    parser.add_argument("--runs", type=int, default=5, help="first-image runs")
    parser.add_argument("--only-large", action="store_true", help="the large series (and the 30-slice first image)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists() or not (ROOT / "frontend" / "dist" / "reader" / "reading.js").exists():
        sys.exit("needs /usr/bin/chromium and frontend/dist (cd frontend && npm ci && npm run build)")

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="readerstudy-browser-bench-") as folder:
        env = private_environment(Path(folder))
        t0 = time.perf_counter()
        data = build(args.cases)
        build_seconds = time.perf_counter() - t0
        port = free_port()
        server = start_server(env, port)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                version = browser.version
                # First image on the last task of the WebGL reader: its slices are fetched nowhere else.
                webgl = next(m for m in MODES if "WebGL" in m)
                first = first_image_runs(browser, base, data["usernames"][webgl], data["tasks"][webgl][-1],
                                         args.runs)
                large = large_runs(browser, base, data["large"], args.runs)
                results = {}
                for mode, query in ({} if args.only_large else MODES).items():
                    tokens = data["tasks"][mode][:-1] if mode == webgl else data["tasks"][mode]
                    results[mode] = transitions(browser, base, data["usernames"][mode], tokens, query,
                                                prefetch="prefetch=0" not in query)
                browser.close()
        finally:
            server.terminate()
            server.wait(10)

    print(f"machine: nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()} "
          f"chromium={version} (headless, no GPU)")
    print("server: gunicorn gthread 2 workers x 8 threads, SQLite (WAL), loopback; "
          f"series {SLICES} x {SIZE}^2, uncompressed explicit VR LE; build {build_seconds:.0f} s")
    print(f"first image (navigation start -> first slice rendered, viewer rendering={first['rendering']}):")
    print(f"  cold browser cache: {summary(first['cold'])}")
    print(f"  warm (reload):      {summary(first['warm'])}")
    print(f"  all {SLICES} slices cached (cold): {summary(first['stack'])}")
    print(f"  baseline, static {SIZE}^2 PNG page: {summary(first['baseline'])}")
    print(f"large series {LARGE_SLICES} x {LARGE_SIZE}^2 T1W post, cold browser cache each run (navigation start ->):")
    for order, r in large.items():
        print(f"  {order}:")
        print(f"    first image rendered:            {summary(r['first'])}")
        print(f"    slices within 10 of it cached:   {summary(r['near'])}")
        print(f"    all slices cached (scrollable):  {summary(r['stack'])}")
        print(f"    then End -> last slice rendered: {summary(r['last'])}")
    print(f"server alone, in-process, ms per slice of the {LARGE_SLICES}-slice stack (n={len(data['server']['per slice'])}):")
    for how, values in data["server"].items():
        print(f"  {how:<14} median {statistics.median(values):.1f} ms, min {min(values):.1f}, max {max(values):.1f}")
    print("submit -> next image fully rendered (in the page, includes the POST):")
    for mode, r in results.items():
        print(f"  {mode:<24} {summary(r['ms'])}; POST alone median {statistics.median(r['submit_ms']):.0f} ms; "
              f"rendering={r['rendering']}; prefetched={sum(r['prefetched'])}/{len(r['prefetched'])}")


if __name__ == "__main__":
    main()
