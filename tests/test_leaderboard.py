"""The leaderboard a user publishes: models on one frozen suite, ranked with their uncertainty.

Hand-worked expectations: on the first 6 refund_agent eval scenarios (all `refund_happy`),
the expert succeeds on every one and `name_instead_of_id` (the seed's bug) on none, so the
paired McNemar test sees 6 discordant pairs, all one way: p = 2 * 0.5**6 = 0.03125 < 0.05
(not tied). Two labels for the same scripted policy play identical episodes: delta 0,
p = 1, tied.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import envs
from core.records import Termination, Trajectory
from evals import leaderboard
from evals.leaderboard import parse_model
from evals.report import fmt_estimate
from evals.stats import Estimate

REFUND = ["suite=refund", "limit=6"]


def board(tmp: Path, *argv: str) -> dict[str, Any]:
    assert leaderboard.main([*argv, f"out={tmp}"]) == 0
    return json.loads((tmp / "leaderboard.json").read_text())


@pytest.fixture(scope="module")
def refund_board(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("board")
    return out, board(out, *REFUND, "models=[expert,name_instead_of_id,'copy=expert']")


def test_ranks_by_success_with_paired_ties(refund_board):
    out, data = refund_board
    rows = {row["model"]: row for row in data["rows"]}
    assert [row["model"] for row in data["rows"]] == ["copy", "expert", "name_instead_of_id"]
    assert [(row["rank"], row["tied_with_above"]) for row in data["rows"]] == [
        (1, False),
        (1, True),
        (3, False),
    ]
    assert rows["expert"]["vs_above"]["point"] == 0.0
    assert rows["expert"]["vs_above"]["p_value"] == 1.0
    bug = rows["name_instead_of_id"]["vs_above"]
    assert bug["point"] == -1.0 and bug["p_value"] == pytest.approx(0.03125)
    assert (rows["expert"]["score"]["point"], rows["name_instead_of_id"]["score"]["point"]) == (
        1.0,
        0.0,
    )
    for row in data["rows"]:
        assert (row["status"]["completed"], row["status"]["failed"]) == (6, 0)
        assert row["pass_k"] == row["score"]  # one epoch: pass^1 is success@1
        assert set(row["slices"]) == {"aggregate", "refund_happy"}
        assert row["latency_p95_ms"] is None and row["cost_per_1k_tokens_usd"] is None
        for link in row["manifests"] + row["reports"]:
            assert (out / link).is_file()
    assert data["episodes"] == 6 and data["suite"] == "refund" and data["k"] == 1


def test_markdown_shows_counts_ties_and_links(refund_board):
    out, _ = refund_board
    lines = (out / "leaderboard.md").read_text().splitlines()
    expert = next(line for line in lines if line.startswith("| =1 | expert |"))
    cells = [cell.strip() for cell in expert.strip("|").split("|")]
    assert cells[2:5] == ["1 [0.6097, 1]", "6 / 0", "7"]
    assert "[manifest](runs/expert/eval/manifest.json)" in cells
    page = (out / "leaderboard.html").read_text()
    assert "<script src" not in page and "<link" not in page and "url(" not in page


def test_a_second_run_reuses_every_eval_by_manifest_hash(refund_board):
    out, _ = refund_board
    episodes = out / "runs" / "expert" / "eval" / "episodes.jsonl"
    before = (episodes.stat().st_mtime_ns, episodes.read_bytes())
    again = board(out, *REFUND, "models=[expert,name_instead_of_id,'copy=expert']")
    assert all(row["reused"] for row in again["rows"])
    assert (episodes.stat().st_mtime_ns, episodes.read_bytes()) == before


def test_a_changed_config_replaces_the_models_runs(tmp_path):
    first = board(tmp_path, "suite=refund", "limit=2", "models=[expert]")
    second = board(tmp_path, "suite=refund", "limit=2", "models=[expert]", "seed=1")
    assert first["rows"][0]["reused"] is False and second["rows"][0]["reused"] is False
    manifest = json.loads((tmp_path / second["rows"][0]["manifests"][0]).read_text())
    assert manifest["config"]["seed"] == 1 and manifest["config"]["resume"] is False
    assert second["refused"] == []


def test_an_endpoints_tool_format_is_part_of_a_runs_identity(refund_board):
    from evals import manifest as mf

    out, _ = refund_board
    text = (out / "runs" / "expert" / "eval" / "manifest.json").read_text()
    scripted = mf.RunManifest.model_validate_json(text)

    def with_format(manifest: mf.RunManifest, policy: str, fmt: str) -> mf.RunManifest:
        endpoint = {**manifest.config["endpoint"], "tool_format": fmt}
        config = {**manifest.config, "policy": policy, "endpoint": endpoint}
        return manifest.model_copy(update={"config": config})

    hermes, auto = (with_format(scripted, "openai", fmt) for fmt in ("hermes", "auto"))
    assert leaderboard.manifest_hash(hermes) != leaderboard.manifest_hash(auto)
    assert leaderboard._stale(hermes, auto) and not leaderboard._stale(auto, auto)
    # a scripted policy reads no endpoint: its tool_format changes nothing
    assert leaderboard.manifest_hash(with_format(scripted, "expert", "auto")) == (
        leaderboard.manifest_hash(with_format(scripted, "expert", "hermes"))
    )


def _copy_run(refund_board, tmp_path: Path) -> Path:
    out, _ = refund_board
    run = tmp_path / "other"
    shutil.copytree(out / "runs" / "expert" / "eval", run)
    return run


def test_a_run_whose_manifest_does_not_match_the_suite_is_refused(refund_board, tmp_path):
    run = _copy_run(refund_board, tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["reward_spec"]["refund_agent"]["outcome"] = 5.0
    (run / "manifest.json").write_text(json.dumps(manifest))
    data = board(tmp_path / "lb", *REFUND, f"models=[expert,run:{run}]")
    assert [row["model"] for row in data["rows"]] == ["expert"]
    (refused,) = data["refused"]
    assert refused["model"] == "other"
    assert refused["reason"].startswith(
        "manifest does not match the suite: reward_spec.refund_agent"
    )


def test_an_incomplete_run_is_refused_unless_allowed(refund_board, tmp_path):
    run = _copy_run(refund_board, tmp_path)
    lines = (run / "episodes.jsonl").read_text().splitlines()
    episodes = [Trajectory.from_json(line) for line in lines]
    for t in episodes[:2]:  # 2 of 6 lost to the endpoint: 33% > 5%
        t.termination, t.success = Termination.POLICY_ERROR, False
    (run / "episodes.jsonl").write_text("".join(t.to_json() + "\n" for t in episodes))
    data = board(tmp_path / "lb", *REFUND, f"models=[run:{run}]")
    assert data["rows"] == []
    assert data["refused"][0]["reason"] == (
        "incomplete run: 4 of 6 episodes completed, 2 failed (infrastructure; 33.3% > 5%) "
        "(allow_incomplete=true ranks it)"
    )
    allowed = board(tmp_path / "lb2", *REFUND, f"models=[run:{run}]", "allow_incomplete=true")
    (row,) = allowed["rows"]
    assert (row["status"]["completed"], row["status"]["failed"]) == (4, 2)
    assert row["score"]["n"] == 4


def test_a_policy_missing_for_an_env_of_the_suite_is_refused(tmp_path):
    data = board(tmp_path, "suite=default", "limit=1", "models=[expert,name_instead_of_id]")
    assert [row["model"] for row in data["rows"]] == ["expert"]
    registered = envs.ENVS.names()
    assert data["entries"] == [{"env": name, "split": "eval"} for name in registered]
    reason = data["refused"][0]["reason"]
    missing = reason.split("unknown policy 'name_instead_of_id' for env '")[1].split("'")[0]
    assert missing in registered and missing != "refund_agent"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["suite=nope", "models=[expert]"], "suite: unknown suite 'nope'; declared: default"),
        (["models=[openai:localhost]"], "write openai:http://HOST:PORT/v1:MODEL"),
        (["models=[expert,expert]"], "models: labels must differ"),
    ],
)
def test_bad_config_exits_2_naming_the_key(argv, message, tmp_path, capsys):
    assert leaderboard.main([*argv, f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evals.leaderboard: bad config: ") and message in err


def test_a_suite_named_after_an_env_is_that_env_s_eval_split():
    # an env author ranks models on their own env without declaring a suite first
    from evals.suite import SuiteEntry, load_suite

    assert load_suite("math_tools", {}) == [SuiteEntry(env="math_tools", split="eval")]
    declared = {"math_tools": [SuiteEntry(env="refund_agent")]}
    assert load_suite("math_tools", declared) == declared["math_tools"]  # declared wins


def test_an_unknown_suite_lists_the_declared_suites_and_the_envs():
    from configs import ConfigError
    from evals.suite import load_suite

    with pytest.raises(ConfigError) as caught:
        load_suite("nope", {})
    assert str(caught.value) == (
        "suite: unknown suite 'nope'; declared: default; or an env's name (its eval split): "
        + ", ".join(envs.ENVS.names())
    )


def test_model_specs():
    assert parse_model("openai:http://127.0.0.1:8000/v1:qwen") == leaderboard.ModelSpec(
        "qwen", "openai", "qwen", "http://127.0.0.1:8000/v1"
    )
    assert parse_model("tiny_sft=hf:/m/sft") == leaderboard.ModelSpec("tiny_sft", "hf", "/m/sft")
    assert parse_model("expert") == leaderboard.ModelSpec("expert", "scripted", "expert")
    assert parse_model("run:/r/x").kind == "run"


# --- end to end: scripted, a local HF model and an OpenAI-compatible endpoint -------------


@pytest.mark.slow
def test_default_suite_with_scripted_hf_and_openai_models(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("fastapi")
    from tests.loopback_openai import Script, serve
    from trainers.tiny_model import build_tiny_model

    corpus = ["Hello, my order #1001 is late.", "What is 12 * 7?", "I refunded it."] * 10
    tiny = build_tiny_model(
        tmp_path / "tiny", corpus, vocab_size=512, hidden_size=32, num_layers=1, num_heads=2,
        num_kv_heads=1,
    )  # fmt: skip
    with serve(Script()) as url:
        data = board(
            tmp_path / "lb",
            "suite=default",
            "limit=2",
            "sampling.max_turn_tokens=8",
            "cost.gpu_hour_usd=2.0",
            "endpoint.backoff_s=0.01",
            f"models=[expert,'tiny=hf:{tiny}','canned=openai:{url}:canned-1']",
        )
    rows = {row["model"]: row for row in data["rows"]}
    assert set(rows) == {"expert", "tiny", "canned"} and data["refused"] == []
    episodes = 2 * len(envs.ENVS.names())  # limit=2 on every registered env
    assert data["rows"][0]["model"] == "expert" and data["episodes"] == episodes
    for row in rows.values():
        assert (row["status"]["completed"], row["status"]["failed"]) == (episodes, 0)
    for name in ("tiny", "canned"):  # model policies report latency and tokens: priced
        assert rows[name]["latency_p95_ms"]["point"] > 0
        assert rows[name]["cost_per_1k_tokens_usd"]["point"] > 0
    assert rows["expert"]["cost_per_1k_tokens_usd"] is None


# --- the HTML page in a real headless browser ----------------------------------------------

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _browser() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium: apt-get install -y chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1500,900")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_the_html_page_renders_sorts_and_matches_the_json(refund_board, tmp_path):
    out, _ = refund_board
    data = json.loads((out / "leaderboard.json").read_text())  # the page written beside it
    driver = _browser()
    from selenium.webdriver.common.by import By

    def models() -> list[str]:
        rows = driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")
        return [row.get_attribute("data-model") for row in rows]

    try:
        driver.get((out / "leaderboard.html").resolve().as_uri())
        assert driver.title == "Leaderboard: suite refund"
        assert models() == ["copy", "expert", "name_instead_of_id"]
        headers = driver.find_elements(By.CSS_SELECTOR, "#board thead th")
        names = [h.text for h in headers]
        assert names[:3] == ["Rank", "Model", "success@1 [95% CI]"]
        by_model = {row["model"]: row for row in data["rows"]}
        for tr in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr"):
            row = by_model[tr.get_attribute("data-model")]
            cells = tr.find_elements(By.TAG_NAME, "td")
            assert cells[0].text == ("=1" if row["tied_with_above"] else str(row["rank"]))
            assert float(cells[2].get_attribute("data-value")) == row["score"]["point"]
            assert cells[2].text == fmt_estimate(Estimate(**row["score"]))
            assert cells[3].text == f"{row['status']['completed']} / {row['status']['failed']}"
        headers[1].click()  # Model, ascending
        assert models() == ["copy", "expert", "name_instead_of_id"]
        headers[1].click()  # descending
        assert models() == ["name_instead_of_id", "expert", "copy"]
        headers[2].click()  # success@1, ascending: the failing policy first
        assert models()[0] == "name_instead_of_id"
        bars = driver.find_elements(By.CSS_SELECTOR, "svg[data-slice='aggregate'] rect.bar")
        assert {
            b.get_attribute("data-model"): float(b.get_attribute("data-point")) for b in bars
        } == {name: row["score"]["point"] for name, row in by_model.items()}
        whiskers = driver.find_elements(By.CSS_SELECTOR, "svg[data-slice='aggregate'] line.whisker")
        assert {
            w.get_attribute("data-model"): float(w.get_attribute("data-upper")) for w in whiskers
        } == {name: row["score"]["upper_ci"] for name, row in by_model.items()}
        embedded = driver.find_element(By.ID, "board-data").get_attribute("textContent")
        assert json.loads(embedded) == data
        driver.save_screenshot(str(tmp_path / "leaderboard.png"))
    finally:
        driver.quit()
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000
