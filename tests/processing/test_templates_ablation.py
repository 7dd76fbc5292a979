"""The template miner has one configuration for every dataset, and every ablation switch is real."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from logwarden.processing.templates import HeaderFormat, MinerConfig, TemplateMiner, grouping_accuracy
from logwarden.processing.templates.masking import DEFAULT_MASKS

BENCH = Path(__file__).resolve().parents[2] / "bench" / "templates.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """``bench/templates.py`` loaded as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_templates_ablation", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _miner_without_mask(name: str) -> TemplateMiner:
    return TemplateMiner(MinerConfig(masks=tuple(m for m in DEFAULT_MASKS if m[0] != name)))


# ---------------------------------------------------------------- one configuration for every dataset
def test_bench_dataset_files_hold_only_header_formats(bench, shared_data: Path) -> None:
    shared = yaml.safe_load((shared_data / "loghub" / "datasets.yaml").read_text(encoding="utf-8"))
    out_of_sample = yaml.safe_load(bench.OOS_DATASETS.read_text(encoding="utf-8"))
    assert set(out_of_sample) == {"source", "truth_file", "formats"}
    assert not set(shared) & set(out_of_sample["formats"]), "out-of-sample logs overlap the shared samples"
    for formats in (shared, out_of_sample["formats"]):
        for name, log_format in formats.items():
            assert isinstance(log_format, str), name
            assert "Content" in HeaderFormat(log_format).fields, name


def test_every_shared_dataset_is_mined_with_the_default_config(bench, shared_data: Path) -> None:
    root = shared_data / "loghub"
    formats = yaml.safe_load((root / "datasets.yaml").read_text(encoding="utf-8"))
    datasets = {name: bench.load_dataset(root, name, fmt) for name, fmt in formats.items()}
    scores = bench.accuracy(MinerConfig(), datasets)
    assert set(scores) == set(formats)
    assert min(s["GA"] for s in scores.values()) >= 0.9, scores
    # The bench's own path mines exactly what a plain default miner mines.
    messages, truth, _ = datasets["HDFS"]
    miner = TemplateMiner()
    assert scores["HDFS"]["GA"] == round(grouping_accuracy(truth, [miner.add(m).template_id for m in messages]), 4)


def test_ablation_variants_change_one_field_of_the_default(bench) -> None:
    variants = bench.ablation_variants()
    assert variants[0][2] == MinerConfig()
    default = dataclasses.asdict(MinerConfig())
    for name, _, config in variants[1:]:
        changed = [k for k, v in dataclasses.asdict(config).items() if v != default[k]]
        assert len(changed) == 1, (name, changed)
    switched = {name.split("=")[0] for name, _, _ in variants if "=" in name}
    assert {field for field, _, _ in bench.SWITCHES} <= switched
    assert {f"-mask:{name}" for name, _ in DEFAULT_MASKS} <= {name for name, _, _ in variants}


# ---------------------------------------------------------------- each switch changes behaviour
@pytest.mark.parametrize(
    ("mask", "message", "with_mask", "without_mask"),
    [
        ("url", "fetch hdfs://host.example/a/b now", "fetch hdfs://<*> now", "fetch hdfs://host.example/a/b now"),
        # A UUID with a digit is also caught whole by `number` ("-" does not split sub-tokens).
        ("uuid", "session abcdefab-abcd-efab-abcd-abcdefabcdef closed", "session <*> closed",
         "session abcdefab-abcd-efab-abcd-abcdefabcdef closed"),
        ("path", "wrote /var/log/app/server.log", "wrote <*>", "wrote /var/log/app/server.log"),
        ("ipv4", "connect to /10.0.0.1 ok", "connect to <*> ok", "connect to /<*> ok"),
        ("mac", "nic aa:bb:cc:0d:ee:ff up", "nic <*> up", "nic aa:bb:cc:<*>:ee:ff up"),
        ("hex", "addr deadbeefcafe", "addr <*>", "addr deadbeefcafe"),
        ("decimal", "took 3.25 s", "took <*> s", "took <*>.<*> s"),
        ("number", "retry 3 of 12", "retry <*> of <*>", "retry 3 of 12"),
    ],
)
def test_each_mask_is_real(mask: str, message: str, with_mask: str, without_mask: str) -> None:
    assert TemplateMiner().mask(message) == with_mask
    assert _miner_without_mask(mask).mask(message) == without_mask


def test_mask_subtokens_switch() -> None:
    message = "state (HWID=1973) changed"
    assert TemplateMiner().mask(message) == "state (HWID=<*>) changed"
    assert TemplateMiner(MinerConfig(mask_subtokens=False)).mask(message) == message
    assert TemplateMiner(MinerConfig(mask_subtokens=False)).mask("retry 3 of 12") == "retry <*> of <*>"


def test_absorb_size_units_switch() -> None:
    message = "stored 384.0 B, free 2 MiB"
    assert TemplateMiner().mask(message) == "stored <*> B, free <*> MiB"
    assert TemplateMiner(MinerConfig(absorb_size_units=True)).mask(message) == "stored <*>, free <*>"


def test_collapse_wildcards_switch() -> None:
    message = "delete blk_1 blk_2 blk_3 now"
    assert TemplateMiner().mask(message) == "delete <*> now"
    assert TemplateMiner(MinerConfig(collapse_wildcards=False)).mask(message) == "delete <*> <*> <*> now"


def test_keep_token_affixes_switch() -> None:
    stream = ["Login ok for user=alice, from web_ui", "Login ok for user=bob, from web_ui"]
    kept, dropped = TemplateMiner(), TemplateMiner(MinerConfig(keep_token_affixes=False))
    assert [kept.add(m) for m in stream][-1].template == "Login ok for user=<*>, from web_ui"
    assert [dropped.add(m) for m in stream][-1].template == "Login ok for <*> from web_ui"


def test_words_are_constants_switch() -> None:
    stream = ["The change in focus caused a layout begin", "The change in focus caused a layout end"]
    on, off = TemplateMiner(), TemplateMiner(MinerConfig(words_are_constants=False))
    assert len({on.add(m).template_id for m in stream}) == 2
    assert len({off.add(m).template_id for m in stream}) == 1


def test_cover_across_paths_switch() -> None:
    # The second token generalises (id=5 / name=x) in the wildcard leaf; "run name=y now fast" lands in
    # the leaf of "name=y", where the words veto refuses "slow"/"fast"; only the search across paths
    # finds the covering template.
    stream = ["run name=y now slow", "run id=5 now fast", "run name=x now fast", "run name=y now fast"]
    on, off = TemplateMiner(), TemplateMiner(MinerConfig(cover_across_paths=False))
    last_on = [on.add(m) for m in stream][-1]
    last_off = [off.add(m) for m in stream][-1]
    assert (last_on.template, last_on.is_new, len(on)) == ("run <*> now fast", False, 2)
    assert (last_off.template, last_off.is_new, len(off)) == ("run name=y now fast", True, 3)


def test_min_word_variants_switch() -> None:
    stream = [f"session opened for user {name}" for name in ("root", "alice", "bob", "carol", "dave")]
    default, merging = TemplateMiner(), TemplateMiner(MinerConfig(min_word_variants=5))
    default.add_batch(stream)
    merging.add_batch(stream)
    assert len(default) == 5
    assert [t.template for t in merging.templates()] == ["session opened for user <*>"]


def test_state_written_before_the_size_unit_switch_keeps_absorbing_units() -> None:
    from logwarden.processing.templates.snapshot import from_state, to_state

    miner = TemplateMiner()
    miner.add("stored 384.0 B")
    state = to_state(miner)
    assert from_state(state, TemplateMiner).config == MinerConfig()
    del state["config"]["absorb_size_units"]
    legacy = from_state(state, TemplateMiner)
    assert legacy.config.absorb_size_units
    assert legacy.mask("stored 12 KB") == "stored <*>"
