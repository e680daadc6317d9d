"""W7 (cases per second of a batch): its goals judged from the measured batch times, only on
the full corpus; a tiny run through the bench runner, where a batch with a missed expectation
is reported and not timed."""

import dataclasses

import pytest

from diffkit import corpus
from diffkit.bench import peers, runner
from diffkit.bench.workloads import w7_cases
from diffkit.cases import Case


def _timing(cases, one, two, dask, overhead=0.002):
    rows = []
    for name, seconds in (("jobs 1", one), ("jobs 2", two), ("dask 2", dask)):
        row = {"engine": "diffkit", "size": name, "status": "ok"}
        if seconds is not None:
            row.update(median_s=seconds / cases, batch_s=seconds, work_per_case_s=0.005)
        rows.append(row)
    if one is not None:
        rows[0].update(overhead_per_case_s=overhead, start_up_s=0.8)
    return {"W7": {"rows": rows, "corpus": {"cases": cases}}}


def _holds(timing):
    return [t.holds for t in w7_cases.targets(timing)]


@pytest.mark.parametrize("one, two, dask, overhead, expected", [
    (60.0, 33.0, 40.0, 0.002, [True, True, True, True]),  # 1.82x, Dask 1.21x
    (60.0, 36.0, 50.0, 0.002, [True, False, False, True]),  # 1.67x, Dask 1.39x
    (300.0, 121.0, 130.0, 0.025, [False, True, True, False]),
])
def test_goals_on_the_full_corpus_are_judged_from_the_batch_times(one, two, dask, overhead,
                                                                   expected):
    assert _holds(_timing(1000, one, two, dask, overhead)) == expected


def test_quick_corpus_goals_are_reported_not_judged_except_the_overhead():
    targets = w7_cases.targets(_timing(100, 6.0, 5.0, 5.5, overhead=0.03))
    assert [t.holds for t in targets] == [None, None, None, False]
    assert all("not judged on 100 cases" in t.detail for t in targets[:3])


def test_a_size_that_did_not_run_leaves_its_goals_unmeasured():
    timing = _timing(1000, 60.0, 33.0, None)
    timing["W7"]["rows"][2]["status"] = "not installed: dask[distributed]"
    targets = w7_cases.targets(timing)
    assert [t.holds for t in targets] == [True, True, None, True]
    assert targets[2].detail == "not installed: dask[distributed]"


def test_a_tiny_run_times_met_batches_and_refuses_a_missed_expectation(monkeypatch):
    made, drawn = {}, corpus.random_cases

    def cases(count, seed):
        made[count] = seed
        if count == 3:  # relu at 0 is a kink, not agreement: this corpus misses
            return [Case("smooth", "x*y", {"x": 0.5, "y": 2.0}),
                    Case("missed", "relu(x)", {"x": 0.0})]
        return drawn(count, seed)

    monkeypatch.setattr(corpus, "random_cases", cases)
    sizes = (w7_cases.BatchSize("jobs 1", 2, jobs=1), w7_cases.BatchSize("jobs 2", 3, jobs=2))
    workload = dataclasses.replace(w7_cases.WORKLOAD, sizes=sizes, quick_sizes=sizes)
    settings = runner.Settings(repeats=1, batch_seconds=0.001, budget=1.0, quick=True,
                               verdict_calls=1)
    report = runner.benchmark([workload], peers.select([]), settings)
    one, two = report["timing"]["W7"]["rows"]
    assert made == {1: w7_cases.SEED, 2: w7_cases.SEED, 3: w7_cases.SEED}
    assert one["status"] == "ok" and one["repeats"] == 1
    assert one["median_s"] == pytest.approx(one["batch_s"] / 2)
    assert one["cases_per_s"] == pytest.approx(2 / one["batch_s"])
    # the start-up and the two cases' own work fit inside the batch they were measured beside
    assert 0 < one["work_per_case_s"] * 2 < one["batch_s"] and one["start_up_s"] > 0
    assert two["status"] == "not counted: 1 of 3 cases missed their expectation (first: missed)"
    assert "median_s" not in two
