"""Allocation under load on PostgreSQL: real threads, separate connections, committed data."""

from __future__ import annotations

import pytest

from bench.randomise import allocation_integrity, hammer_one_participant, participants_make_ready, randomise_concurrently
from tests.factories import SEED
from trial import services as trial_services
from trial.models import Allocation, Trial

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def coordinator_everywhere(walkback: Trial, make_staff):  # type: ignore[no-untyped-def]
    """A coordinator at every site of the trial: the clients randomise participants at all of them."""
    return make_staff("coordinator", sites=list(walkback.sites.values_list("code", flat=True)), username="everywhere")


def test_16_clients_allocate_1000_participants_with_no_duplicate_and_no_failure(walkback: Trial, coordinator_everywhere) -> None:
    trial_services.randomisation_list_generate(trial=walkback, seed=SEED, per_stratum=400, by="statistician")
    ids = participants_make_ready(trial=walkback, count=1000, by=coordinator_everywhere)

    result = randomise_concurrently(participant_ids=ids, clients=16, by=coordinator_everywhere)

    assert result.failures == []
    assert len(result.latencies) == 1000 and result.already == 0
    report = allocation_integrity(trial=walkback)
    assert report.allocations == 1000
    assert report.duplicate_slots == 0
    assert report.participants_with_two_allocations == 0
    assert report.strata_with_gaps == 0  # each stratum used positions 1..n, in order, none skipped
    assert Allocation.objects.values("stratum_key").distinct().count() == 4


def test_32_simultaneous_calls_for_one_participant_give_exactly_one_allocation(walkback: Trial, coordinator_everywhere) -> None:
    trial_services.randomisation_list_generate(trial=walkback, seed=SEED, per_stratum=8, by="statistician")
    (pk,) = participants_make_ready(trial=walkback, count=1, by=coordinator_everywhere)

    result = hammer_one_participant(participant_id=pk, clients=32, by=coordinator_everywhere)

    assert result.failures == []
    assert len(result.latencies) == 1
    assert result.already == 31
    assert Allocation.objects.filter(participant_id=pk).count() == 1


def test_minimisation_under_concurrency_allocates_each_participant_once(walkback: Trial, coordinator_everywhere) -> None:
    walkback.randomisation_method = "minimisation"
    walkback.save()
    ids = participants_make_ready(trial=walkback, count=200, by=coordinator_everywhere)
    result = randomise_concurrently(participant_ids=ids, clients=8, by=coordinator_everywhere)
    assert result.failures == []
    counts = Allocation.objects.values_list("arm__code", flat=True)
    assert len(counts) == 200
    walking = sum(1 for c in counts if c == "walking")
    assert abs(walking - (200 - walking)) <= 10
