from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from participants import services
from participants.models import Participant
from trial import services as trial_services
from trial.models import Trial

ELIGIBLE = {
    "age_18_plus": True,
    "recent_episode": True,
    "recovered": True,
    "able_to_walk": True,
    "already_active": False,
    "walking_prevented": False,
    "recent_spinal_surgery": False,
}
SEED = "a-secret-seed-for-tests-only"


@pytest.fixture
def coordinator(make_staff) -> Any:
    return make_staff("coordinator", sites=["SYD", "NCL", "BNE"], username="coord")


@pytest.fixture
def sealed_list(walkback: Trial) -> Any:
    return trial_services.randomisation_list_generate(trial=walkback, seed=SEED, per_stratum=40, by="statistician")


@pytest.fixture
def enrol(walkback: Trial, coordinator: Any) -> Callable[..., Participant]:
    """enrol(site="SYD", prior="yes", referral="community") -> an eligible, consented participant."""

    def make(site: str = "SYD", prior: str | None = "yes", referral: str = "community", by: Any = None) -> Participant:
        by = by or coordinator
        screening = services.screening_record(site=walkback.sites.get(code=site), answers=ELIGIBLE, by=by, referral=referral)
        strata = {"prior_episodes_gt2": prior} if prior else {}
        return services.participant_enrol(
            screening=screening,
            consent=services.ConsentInput(method="in_person", signed_name="Pat Example"),
            strata=strata,
            contact=services.ContactInput(email="pat@example.org", mobile="+61400000000"),
            by=by,
        )

    return make
