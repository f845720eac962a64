"""An investigator signs the database lock, builds a blinded release, sees it ready and downloads the zip."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.core.management import call_command

from closeout.models import DatabaseLock, Release
from presets.demo import DEMO_PASSWORD_SUFFIX
from tests.browser.conftest import demo_login
from trial.models import Trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(db: Any) -> Trial:
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Trial.objects.get(code="walkback")


def test_an_investigator_signs_the_lock_and_downloads_a_blinded_release(page: Any, live_server: Any, demo: Trial) -> None:
    base = live_server.url
    password = f"investigator{DEMO_PASSWORD_SUFFIX}"
    demo_login(page, base, "investigator")  # with the current code of the demo's TOTP secret
    page.wait_for_selector("[data-testid=whoami]", state="attached")

    page.goto(f"{base}/lock/")
    assert page.is_visible("[data-testid=blockers]")  # the demo still has open items
    page.fill("[data-testid=lock-form] input[name=password]", password)
    page.fill("[data-testid=lock-form] [name=open_items_note]", "Demo: remaining windows close after the end of follow-up")
    page.click("[data-testid=lock-form] input[type=submit]")
    page.wait_for_selector("[data-testid=locked-state]")
    lock = DatabaseLock.objects.get(trial=demo)
    assert lock.signer_name and lock.meaning.startswith("I approve the lock of the WalkBack database")

    page.goto(f"{base}/releases/")
    page.select_option("select[name=variant]", "blinded")
    page.click("[data-testid=release-form] button[type=submit]")
    page.wait_for_selector("[data-testid=release-download]", timeout=60_000)  # progress, then ready
    release = Release.objects.get(trial=demo)
    assert release.status == "ready" and release.lock_id == lock.pk

    with page.expect_download() as download_info:
        page.click("[data-testid=release-download]")
    content = open(download_info.value.path(), "rb").read()  # noqa: SIM115
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert any(name.endswith("manifest.csv") for name in names)
    assert not any("allocation" in name for name in names)  # blinded
