"""The web pages in headless Chromium: sign in, submit a generation, watch it finish without reloading."""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.pages import HAVE_CHROMIUM, serious_axe_violations, sign_in

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not HAVE_CHROMIUM, reason="Debian chromium is not installed (make test installs it)")]


@pytest.fixture
def page(browser, platform):
    context = browser.new_context(base_url=platform.web_url)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def test_sign_in_submit_and_watch_a_job_finish(page, platform):
    sign_in(page, platform.create_key("browser-user"))
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.click("text=New generation")
    page.select_option("#model", "slow-gpt2")
    page.fill("#prompt", "Spring sale on running shoes")
    page.fill("#max_new_tokens", "400")
    page.fill("#seed", "21")
    page.click("#generate-form button[type=submit]")
    page.wait_for_url("**/jobs/job_*")

    # The page refreshes itself: running, then succeeded, with no reload in between.
    page.evaluate("window.__sameDocument = true")
    # (Selectors, not wait_for_function: the page's CSP forbids the eval that would need.)
    page.wait_for_selector("#status.status-running, #status.status-succeeded")
    page.wait_for_selector("#status.status-succeeded", timeout=90_000)
    assert page.evaluate("window.__sameDocument") is True
    # It followed the job's live event stream rather than polling the record every second.
    assert any(u.split("?")[0].endswith("/live") for u in requested)
    assert sum(1 for u in requested if u.split("?")[0].endswith(".json") and "/events" not in u) < 10
    assert page.eval_on_selector("#bar", "el => el.style.width") == "100%"
    text = page.inner_text("pre.completion")
    assert text.strip()
    assert "400 / 400 tokens" in page.inner_text("#progress-text")
    assert page.locator("#cancel-form").count() == 0
    if os.environ.get("AIGC_SCREENSHOTS"):  # for a person to look at: AIGC_SCREENSHOTS=dir make test
        page.wait_for_timeout(600)  # let the bar's CSS transition settle
        page.screenshot(path=os.path.join(os.environ["AIGC_SCREENSHOTS"], "job.png"), full_page=True)

    # The download link works with the session alone (it redirects to a presigned S3 URL).
    href = page.get_attribute("#artifacts a", "href")
    download = page.request.get(href)
    job_id = page.url.rsplit("/", 1)[-1]
    shown = page.request.get(f"/jobs/{job_id}.json").json()
    assert download.ok and json.loads(download.body()) == shown["output"]

    api_job = platform.api(platform.create_key("browser-api")).get(f"/v1/jobs/{job_id}")
    assert api_job.status_code == 404  # another owner's key does not see it
    page.click("text=My jobs")
    listed = page.inner_text("table.jobs")
    assert job_id in listed and " ago" in listed  # the Age column reads as a person would say it


def test_form_errors_name_the_field(page, platform):
    sign_in(page, platform.create_key("browser-user-2"))
    page.goto("/jobs/new")
    # The inputs carry the declared limits; max new tokens also stays below the model's context.
    assert page.get_attribute("#temperature", "max") == "2" and page.get_attribute("#n", "min") == "1"
    page.select_option("#model", "builtin:ad-writer")
    assert page.get_attribute("#max_new_tokens", "max") == "511"  # its context is 512 tokens
    page.fill("#prompt", "hello")
    page.fill("#max_new_tokens", "0")
    page.fill("#temperature", "5")
    page.click("#generate-form button[type=submit]")
    # Every problem at once, in words, each beside its field.
    assert page.inner_text("#max_new_tokens-error") == "Max new tokens must be at least 1"
    assert page.inner_text("#temperature-error") == "Temperature must be at most 2"
    assert page.get_attribute("#temperature", "aria-invalid") == "true"
    assert page.input_value("#prompt") == "hello"  # what was typed is kept


def test_wrong_key_is_refused(page):
    page.goto("/login")
    page.fill("#api_key", "aigc_wrong")
    page.click("button[type=submit]")
    assert "Invalid API key" in page.inner_text(".error")


def test_finetune_form_job_page_checkpoints_and_chat_link(page, browser, platform):
    """The fine-tune form: defaults from the declared shape, problems beside their fields, then a
    LoRA run on an upload whose page draws the curves, lists the checkpoints and links to a chat."""
    from core.schemas import FinetuneHyperparameters, LoraSettings
    from tests.integration.test_finetune import corpus_bytes

    sign_in(page, platform.create_key("browser-trainer"))
    page.click("nav >> text=Fine-tune")
    page.wait_for_url("**/finetune/new")
    page.wait_for_load_state("load")
    hp = FinetuneHyperparameters()
    assert [page.input_value(f"#{n}") for n in ("epochs", "batch_size", "learning_rate", "lora_r")] == \
        [str(hp.epochs), str(hp.batch_size), str(hp.learning_rate), str(LoraSettings().r)]
    assert page.is_hidden("#lora-rank")
    page.select_option("#method", "lora")
    page.wait_for_selector("#lora-rank", state="visible")

    # A file over the upload limit (1 MiB here) is refused beside its field before it is sent.
    page.set_input_files("#training_upload", files=[{"name": "big.txt", "mimeType": "text/plain",
                                                     "buffer": b"an ad\n" * 200_000}])
    page.click("#finetune-form button[type=submit]")
    assert "limited to 1.0 MiB" in page.inner_text("#training_upload-error")
    assert page.url.endswith("/finetune/new")

    # Every problem at once, in words, beside its field; nothing is made.
    page.set_input_files("#training_upload", files=[{"name": "few.txt", "mimeType": "text/plain",
                                                     "buffer": b"one ad\ntwo ads\n"}])
    page.fill("#epochs", "0")
    page.fill("#lora_r", "0")
    page.click("#finetune-form button[type=submit]")
    assert "at least 10" in page.inner_text("#training_upload-error")
    assert page.inner_text("#epochs-error") == "Epochs must be at least 1"
    assert page.inner_text("#lora_r-error") == "LoRA rank must be at least 1"
    assert page.get_attribute("#epochs", "aria-invalid") == "true"
    assert page.input_value("#method") == "lora"  # what was chosen is kept

    page.select_option("#base_model", "builtin:tiny-gpt2")
    page.set_input_files("#training_upload", files=[{"name": "ads.jsonl", "mimeType": "application/jsonl",
                                                     "buffer": corpus_bytes(100)}])
    page.click("#advanced summary")
    for name, value in {"epochs": "1", "lora_r": "4", "batch_size": "8", "learning_rate": "0.003",
                        "max_steps": "20", "block_size": "64", "eval_every": "10", "checkpoint_every": "10",
                        "warmup_steps": "2", "suffix": "browser"}.items():
        page.fill(f"#{name}", value)
    page.click("#finetune-form button[type=submit]")
    page.wait_for_url("**/jobs/ftjob-*")
    page.wait_for_selector("#status.status-succeeded", timeout=120_000)
    page.wait_for_selector("#loss svg path.train-line", state="attached")
    assert page.locator("#loss circle.valid-dot").count() == 3  # steps 0, 10 and 20
    usage = page.inner_text("#usage")
    assert "(LoRA)" in usage and "20 steps" in usage and "validation loss" in usage
    page.wait_for_selector("#checkpoints:not([hidden]) a")
    rows = page.locator("#checkpoint-rows tr").all_inner_texts()
    assert rows and rows[0].split()[0] == "20", rows  # newest first
    assert page.locator("#checkpoint-rows a").first.inner_text().endswith(":ckpt-step-20")
    assert page.locator("#pause-form:visible, #resume-form:visible, #cancel-form").count() == 0  # it ended
    if os.environ.get("AIGC_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["AIGC_SCREENSHOTS"], "finetune.png"), full_page=True)
    _fits_a_phone_and_passes_axe(browser, platform, page, page.url)
    model = page.request.get(page.url + ".json").json()["output"]["model"]
    assert model.startswith("ft:builtin:tiny-gpt2:browser:")
    page.click("#chat-link")
    page.wait_for_url("**/chat?model=*")
    assert page.input_value("#model") == model  # the chat starts with the fine-tuned model chosen


def _fits_a_phone_and_passes_axe(browser, platform, signed_in, url: str) -> None:
    """The page at a phone's width in a context that may inject axe-core (past the page's CSP)."""
    context = browser.new_context(base_url=platform.web_url, viewport={"width": 390, "height": 844},
                                  bypass_csp=True, storage_state=signed_in.context.storage_state())
    try:
        phone = context.new_page()
        phone.goto(url)
        phone.wait_for_selector("#checkpoints:not([hidden])")
        assert phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        assert serious_axe_violations(phone) == []
    finally:
        context.close()


def test_finetune_page_pauses_and_resumes(page, platform):
    from tests.integration.test_finetune import HP, corpus_bytes

    key = platform.create_key("browser-pauser")
    api = platform.api(key)
    upload = api.upload(corpus_bytes(100)).json()
    # Long enough never to end on its own; no evaluation or checkpoint but the pause's own.
    job = api.submit({"base_model": "builtin:tiny-gpt2", "training_file": upload["id"], "hyperparameters": {
        **HP, "max_steps": 100_000, "eval_every": 100_000, "checkpoint_every": 100_000}}, kind="text.finetune")
    try:
        sign_in(page, key)
        page.goto(f"/jobs/{job['id']}")
        page.wait_for_selector("#status.status-running", timeout=60_000)
        page.click("#pause-form button")
        page.wait_for_selector("#status.status-paused", timeout=60_000)
        page.wait_for_selector("#resume-form:not([hidden])")
        assert page.is_hidden("#pause-form") and page.is_visible("#cancel-form")
        page.click("#resume-form button")
        page.wait_for_selector("#status.status-running", timeout=60_000)
        assert page.is_visible("#pause-form") and page.is_hidden("#resume-form")
        assert api.get(f"/v1/jobs/{job['id']}").json()["checkpoint"]["step"] >= 1  # paused at a checkpoint
    finally:
        api.post(f"/v1/jobs/{job['id']}/cancel")
    assert api.wait(job["id"], timeout_s=60)["status"] == "canceled"


def test_campaign_page_previews_runs_and_offers_downloads(page, platform, tmp_path):
    sheet = tmp_path / "products.csv"
    sheet.write_text("product,audience\n绿茶,学生\nRunning shoes,\"runners, walkers\"\nLamp,readers\n",
                     encoding="utf-8")
    sign_in(page, platform.create_key("browser-marketer"))
    page.click("text=Campaigns")
    page.set_input_files("#file", str(sheet))
    page.fill("#template", "Ad for {product} aimed at {audience}:")
    page.wait_for_selector("#preview ol li >> text='Ad for 绿茶 aimed at 学生:'")
    assert len(page.locator("#preview ol li").all_inner_texts()) == 3
    page.fill("#template", "Ad for {product} in {city}")
    page.wait_for_selector("#preview .error")
    assert "city" in page.inner_text("#preview .error")

    page.fill("#template", "Ad for {product} aimed at {audience}:")
    page.fill("#max_new_tokens", "6")
    page.click("#campaign-form button[type=submit]")
    page.wait_for_url("**/campaigns/cmp_*")
    page.wait_for_selector("#status.status-succeeded", timeout=120_000)
    assert "3 / 3 rows" in page.inner_text("#counts")
    names = page.locator("#artifacts a").all_inner_texts()
    assert any("output.csv" in n for n in names) and any("errors.jsonl" in n for n in names)
    href = page.get_attribute("#artifacts a >> text=/output.csv/", "href")
    body = page.request.get(href).body().decode("utf-8-sig")
    assert "绿茶" in body and "runners, walkers" in body
    # Once done, the page itself shows the first rows written, with their prompts.
    page.reload()
    rows = page.locator("#first-rows tbody tr").all_inner_texts()
    assert len(rows) == 3 and "Ad for 绿茶 aimed at 学生:" in rows[0]
    if os.environ.get("AIGC_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["AIGC_SCREENSHOTS"], "campaign.png"), full_page=True)


def test_campaign_preview_shows_a_file_chosen_before_the_pages_script_ran(page, platform, tmp_path):
    # On a slow load the form can be filled before campaigns.js runs: its events fire unheard.
    sheet = tmp_path / "products.csv"
    sheet.write_text("product,audience\nTea,students\n", encoding="utf-8")
    sign_in(page, platform.create_key("early-marketer"))
    held = []
    page.route("**/static/campaigns.js", lambda route: held.append(route.request.url) or route.abort())
    page.click("text=Campaigns")
    page.wait_for_selector("#file")
    page.set_input_files("#file", str(sheet))
    page.fill("#template", "Ad for {product} aimed at {audience}:")
    assert held and page.locator("#preview ol li").count() == 0  # nothing listened
    page.unroute("**/static/campaigns.js")
    page.add_script_tag(url=held[0])  # the script arrives late
    page.wait_for_selector("#preview ol li >> text='Ad for Tea aimed at students:'")


def test_gan_training_form_gallery_and_sampling_form(page, platform):
    sign_in(page, platform.create_key("gan-browser"))
    page.click("text=GAN")
    assert page.input_value("#dataset") == "builtin:digits"
    # A bad number is a 400 on the page, naming the field, and nothing is submitted.
    page.fill("#epochs", "0")
    page.click("#train-form button[type=submit]")
    assert "input.epochs must be >= 1" in page.inner_text("#train-form")
    # An archive chosen in the form is checked before anything is stored.
    from tests.unit.test_file_checks import make_zip, png

    page.set_input_files("#archive", files=[{"name": "evil.zip", "mimeType": "application/zip",
                                               "buffer": make_zip({"../evil.png": png()})}])
    page.fill("#epochs", "3")
    page.click("#train-form button[type=submit]")
    assert "escapes the archive" in page.inner_text("#train-form")
    assert page.locator("#dataset option").count() == 1  # no file was stored
    for name, value in {"epochs": "3", "batch_size": "32", "nz": "16", "ngf": "8", "ndf": "8",
                        "max_images": "192"}.items():
        page.fill(f"#{name}", value)
    page.click("#train-form button[type=submit]")
    page.wait_for_url("**/jobs/job_*")

    # The gallery grows one grid per epoch while the page refreshes itself; then the curves.
    page.wait_for_selector("#gallery img[alt='samples-epoch-003.png']", timeout=120_000)
    page.wait_for_selector("#status.status-succeeded", timeout=60_000)
    captions = page.locator("#gallery figcaption").all_inner_texts()
    assert captions == ["epoch 1", "epoch 2", "epoch 3"]
    widths = page.eval_on_selector_all("#gallery img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [530, 530, 530]  # the PNGs loaded through the session's artifact route
    assert page.locator("#gallery a[target=_blank] > img").count() == 3  # each opens full size
    assert page.get_attribute("#progress", "role") == "progressbar"
    assert page.get_attribute("#progress", "aria-valuenow") == "100"
    assert page.get_attribute("#status", "aria-live") == "polite"
    page.wait_for_selector("#loss:not([hidden]) path.line-2")
    assert page.inner_text("#loss-names") == "discriminator, generator"
    assert "digits covered" in page.inner_text("#quality")
    if os.environ.get("AIGC_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["AIGC_SCREENSHOTS"], "gan-train.png"), full_page=True)

    page.click("#sample-link")
    page.fill("#sample-form #n", "25")
    page.fill("#sample-form #seed", "5")
    page.fill("#to_seed", "6")
    page.click("#sample-form button[type=submit]")
    page.wait_for_url("**/jobs/job_*")
    page.wait_for_selector("#status.status-succeeded", timeout=60_000)
    page.wait_for_selector("#gallery.large img[alt='interpolation.png']")
    assert page.locator("#gallery img").count() == 2  # the grid and the interpolation strip
    grid_width = page.eval_on_selector("#gallery img[alt='grid.png']", "i => i.naturalWidth")
    assert grid_width == 5 * 64 + 6 * 2


def test_chat_page_streams_stops_and_carries_the_conversation(page, platform):
    key = platform.create_key("chatter")
    api = platform.api(key)
    sign_in(page, key)
    page.click("text=Chat")
    page.click("text=Model and settings")
    page.select_option("#model", "slow-gpt2")
    page.fill("#max_tokens", "700")
    page.fill("#message", "Write an ad for a thermos for hikers")
    page.press("#message", "Enter")  # the keyboard sends

    # The reply grows over several frames while it streams.
    reply = page.locator(".turn-assistant .content").first
    seen = set()
    for _ in range(600):  # at most a minute
        seen.add(len(reply.inner_text()))
        if len(seen - {0}) >= 3:
            break
        page.wait_for_timeout(100)
    assert len(seen - {0}) >= 3, seen
    page.click("#stop")
    page.wait_for_selector("#chat[data-state=idle]")
    assert page.locator(".turn.stopped").count() == 1
    [first] = [j for j in api.get("/v1/jobs", params={"kind": "text.chat"}).json()["data"]]
    assert api.wait(first["id"], timeout_s=30)["status"] == "canceled"  # Stop canceled the job
    stopped_text = reply.inner_text()

    # A second turn carries the first (as far as it got).
    page.select_option("#model", "builtin:tiny-gpt2")
    page.fill("#max_tokens", "8")
    page.fill("#message", "Shorter")
    page.click("#send")
    page.wait_for_selector("#chat[data-state=idle][data-finished=true]", timeout=60_000)
    assert page.locator(".turn-assistant").count() == 2
    jobs = api.get("/v1/jobs", params={"kind": "text.chat"}).json()["data"]
    second = jobs[0]["input"]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == stopped_text and second[2]["content"] == "Shorter"

    # An error shows in place, naming the field, and the conversation stays.
    page.fill("#max_tokens", "0")
    page.fill("#message", "again")
    page.click("#send")
    page.wait_for_selector("#chat-error:not([hidden])")
    assert "max_tokens" in page.inner_text("#chat-error")
    assert page.locator(".turn-assistant").count() == 2

    # At a phone's width nothing spills sideways.
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if os.environ.get("AIGC_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["AIGC_SCREENSHOTS"], "chat.png"), full_page=True)


def test_images_page_prompt_class_picker_and_full_size_viewer(page, platform):
    sign_in(page, platform.create_key("images-browser"))
    page.click("nav >> text=Images")
    assert "No conditional image model yet" in page.inner_text("main")
    page.click("main >> text=Train one")
    # gan.js is at the end of the page: wait for it before checking what it does.
    page.wait_for_url("**/gan")
    page.wait_for_load_state("load")
    # The stabilisers are a DCGAN's: the form hides them for a VAE.
    page.select_option("#architecture", "vae")
    page.wait_for_selector("#stabilisers", state="hidden", timeout=10_000)
    page.select_option("#architecture", "dcgan")
    page.wait_for_selector("#stabilisers", state="visible", timeout=10_000)
    page.check("#conditional")
    for name, value in {"epochs": "6", "batch_size": "32", "nz": "32", "ngf": "16", "ndf": "16", "lr": "0.001",
                        "ema_decay": "0.9", "seed": "3"}.items():
        page.fill(f"#{name}", value)
    page.click("#train-form button[type=submit]")
    page.wait_for_url("**/jobs/job_*")
    page.wait_for_selector("#status.status-succeeded", timeout=240_000)
    assert "label fidelity" in page.inner_text("#quality")
    page.click("#images-link")
    page.wait_for_url("**/images?model=*")
    assert page.eval_on_selector_all("#class option", "os => os.map(o => o.value)") == [""] + [str(i) for i in range(10)]

    # A prompt that names no class is refused beside the field, listing the classes.
    page.fill("#prompt", "a cat")
    page.click("#image-form button[type=submit]")
    page.wait_for_selector("#image-form .field-error")
    assert "names none of the model's classes" in page.inner_text("#image-form")
    page.fill("#prompt", "a handwritten seven")
    page.fill("#n", "6")
    page.select_option("#size", "256x256")
    page.click("#image-form button[type=submit]")
    page.wait_for_url("**/images?job=*")
    page.wait_for_selector("#image-grid .thumb img", timeout=60_000)
    assert page.inner_text("#results-title") == "“7” × 6"
    page.wait_for_function("() => [...document.querySelectorAll('#image-grid img')].every(i => i.naturalWidth > 0)")
    assert page.eval_on_selector_all("#image-grid img", "imgs => imgs.map(i => i.naturalWidth)") == [256] * 6
    page.click("#image-grid .thumb >> nth=2")
    page.wait_for_selector("#viewer[open]")
    assert "image-003.png" in page.inner_text("#viewer-caption")
    if os.environ.get("AIGC_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["AIGC_SCREENSHOTS"], "images.png"), full_page=True)
    page.click("#viewer-close")
    assert page.is_hidden("#viewer")
    # The picker wins over the prompt, and the page keeps what was asked.
    page.select_option("#class", "3")
    page.click("#image-form button[type=submit]")
    page.wait_for_url("**/images?job=*")
    page.wait_for_selector("#image-grid .thumb img", timeout=60_000)
    assert page.inner_text("#results-title") == "“3” × 6"
    assert page.input_value("#class") == "3"


def test_cancel_asks_first(browser, make_platform):
    """A queued job (no worker here) is canceled only once the user agrees to the page's question."""
    p = make_platform("confirm-cancel")
    p.start_web()
    key = p.create_key("careful")
    job = p.api(key).submit({"model": "builtin:tiny-gpt2", "prompt": "Wait", "max_new_tokens": 4})
    context = browser.new_context(base_url=p.web_url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        sign_in(page, key)
        page.goto(f"/jobs/{job['id']}")
        page.wait_for_load_state("load")
        asked = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        page.click("#cancel-form button[type=submit]")
        assert asked == ["Cancel this job?"]
        assert p.api(key).get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"  # said no: nothing sent
        page.once("dialog", lambda d: d.accept())
        page.click("#cancel-form button[type=submit]")
        assert p.api(key).wait(job["id"], timeout_s=30)["status"] == "canceled"
    finally:
        context.close()
