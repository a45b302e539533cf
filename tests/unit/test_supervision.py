"""node.py's supervision without processes or sleeps: the state table, backoff and fatal with time
passed in, agents.toml checking (errors name the line), and the rotating log writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from farmhand.node.config import AgentSpec, ConfigError, Inheritance, parse_config
from farmhand.node.process import SupervisedProcess
from farmhand.node.rotating import RotatingWriter
from farmhand.node.states import (
    TRANSITIONS,
    Action,
    Lifecycle,
    Policy,
    State,
    Trigger,
    backoff_delay,
)

pytestmark = pytest.mark.timeout(10)

ROOT = Path(__file__).resolve().parent.parent.parent
T0 = 1000.0


def started(policy: Policy | None = None) -> tuple[Lifecycle, list[tuple[State, State]]]:
    """A lifecycle just spawned at T0 (pid 100), and the list its transitions go to."""
    seen: list[tuple[State, State]] = []
    life = Lifecycle("w1", policy or Policy(), lambda _, old, new: seen.append((old, new)))
    assert life.start(T0) is Action.SPAWN
    life.spawned(T0, 100)
    return life, seen


def fail_fast(life: Lifecycle, now: float) -> Action:
    """The process dies 0.1 s after its spawn at `now`."""
    return life.exited(now + 0.1, 1)


# -- the state table -------------------------------------------------------------------------
def test_every_state_is_reachable_and_every_transition_named() -> None:
    targets = {State.STOPPED} | set(TRANSITIONS.values())
    assert targets == set(State)
    assert {trigger for _, trigger in TRANSITIONS} == set(Trigger)


def test_a_transition_not_in_the_table_is_refused() -> None:
    life = Lifecycle("w1", Policy())
    with pytest.raises(RuntimeError, match="no transition"):
        life._fire(Trigger.STARTED, T0)


def test_start_then_running_after_start_secs() -> None:
    life, seen = started()
    assert life.state is State.STARTING
    assert life.tick(T0 + 0.5) is Action.NOTHING
    assert life.state is State.STARTING
    assert life.tick(T0 + 1.0) is Action.NOTHING
    assert life.state is State.RUNNING
    assert seen == [(State.STOPPED, State.STARTING), (State.STARTING, State.RUNNING)]
    view = life.view(T0 + 5)
    assert view["pid"] == 100 and view["uptime_s"] == 5 and view["restarts"] == 0


def test_start_is_a_no_op_when_already_up() -> None:
    life, _ = started()
    assert life.start(T0 + 0.1) is Action.NOTHING
    life.tick(T0 + 2)
    assert life.start(T0 + 2) is Action.NOTHING


# -- failed starts: backoff, then fatal --------------------------------------------------------
def test_fast_failures_back_off_1_2_4_8_then_fatal_at_the_fifth() -> None:
    life, _ = started()
    now = T0
    delays = []
    for _ in range(4):
        assert fail_fast(life, now) is Action.NOTHING
        assert life.state is State.BACKOFF
        died_at = now + 0.1
        delay = life.retry_at - died_at  # type: ignore[operator]
        delays.append(delay)
        assert life.tick(died_at + delay - 0.01) is Action.NOTHING  # not yet
        now = died_at + delay
        assert life.tick(now) is Action.SPAWN
        assert life.state is State.STARTING
        life.spawned(now, 100)
    assert delays == [1, 2, 4, 8]
    assert fail_fast(life, now) is Action.NOTHING
    assert life.state is State.FATAL
    assert life.failures == 5 and life.last_exit == 1 and life.restarts == 4
    # Fatal stays fatal, however long we wait.
    assert life.tick(now + 3600) is Action.NOTHING
    assert life.state is State.FATAL


def test_operator_start_leaves_fatal_and_forgives_the_failures() -> None:
    life, _ = started(Policy(start_retries=1))
    fail_fast(life, T0)
    assert life.state is State.FATAL
    assert life.start(T0 + 10) is Action.SPAWN
    assert life.state is State.STARTING and life.failures == 0


def test_backoff_is_capped() -> None:
    assert [backoff_delay(n, 1, 60) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(3, 0.1, 0.3) == pytest.approx(0.3)


def test_a_failed_spawn_is_a_failed_start() -> None:
    life = Lifecycle("w1", Policy())
    assert life.start(T0) is Action.SPAWN
    assert life.spawn_failed(T0, "cannot start x: No such file") is Action.NOTHING
    assert life.state is State.BACKOFF and life.failures == 1
    assert life.view(T0)["error"] == "cannot start x: No such file"


def test_reaching_running_resets_the_failure_count() -> None:
    life, _ = started()
    fail_fast(life, T0)
    assert life.tick(T0 + 1.1) is Action.SPAWN
    life.spawned(T0 + 1.1, 101)
    life.tick(T0 + 2.2)
    assert life.state is State.RUNNING and life.failures == 0


# -- a process that ran long ------------------------------------------------------------------
def test_a_long_runner_that_crashes_restarts_at_once() -> None:
    life, seen = started()
    life.tick(T0 + 1)
    assert life.exited(T0 + 300, -9) is Action.SPAWN
    assert life.state is State.STARTING
    assert seen[-2:] == [(State.RUNNING, State.EXITED), (State.EXITED, State.STARTING)]
    assert life.last_exit == -9 and life.failures == 0 and life.pid is None


def test_dying_late_while_still_starting_is_not_a_failed_start() -> None:
    # The loop may not have promoted it yet: what counts is how long it lived.
    life, _ = started()
    assert life.exited(T0 + 1.5, 1) is Action.SPAWN
    assert life.failures == 0


@pytest.mark.parametrize(
    ("policy", "code", "restarts"),
    [
        ("always", 0, True),
        ("on-failure", 0, False),
        ("on-failure", 2, True),
        ("never", 2, False),
    ],
)
def test_restart_policy(policy: str, code: int, restarts: bool) -> None:
    life, _ = started(Policy(restart=policy))
    life.tick(T0 + 1)
    action = life.exited(T0 + 60, code)
    assert (action is Action.SPAWN) is restarts
    assert life.state is (State.STARTING if restarts else State.EXITED)


# -- stopping ---------------------------------------------------------------------------------
def test_stop_sends_sigterm_then_sigkill_after_the_timeout() -> None:
    life, _ = started(Policy(stop_timeout_s=5))
    life.tick(T0 + 1)
    assert life.stop(T0 + 10) is Action.TERMINATE
    assert life.state is State.STOPPING
    assert life.tick(T0 + 14.9) is Action.NOTHING
    assert life.tick(T0 + 15) is Action.KILL
    assert life.tick(T0 + 16) is Action.NOTHING  # SIGKILL once
    assert life.exited(T0 + 16, -9) is Action.NOTHING
    assert life.state is State.STOPPED
    assert life.tick(T0 + 100) is Action.NOTHING


def test_stop_while_backing_off_or_fatal_is_immediate() -> None:
    life, _ = started()
    fail_fast(life, T0)
    assert life.stop(T0 + 0.2) is Action.NOTHING
    assert life.state is State.STOPPED
    assert life.tick(T0 + 100) is Action.NOTHING  # the pending retry is gone


def test_restart_stops_then_starts_when_the_old_process_is_gone() -> None:
    life, _ = started()
    life.tick(T0 + 1)
    assert life.restart(T0 + 5) is Action.TERMINATE
    assert life.state is State.STOPPING
    assert life.exited(T0 + 5.2, 0) is Action.SPAWN
    assert life.state is State.STARTING
    life.spawned(T0 + 5.2, 101)
    assert life.restarts == 1


def test_restart_of_a_fatal_process_starts_it() -> None:
    life, _ = started(Policy(start_retries=1))
    fail_fast(life, T0)
    assert life.restart(T0 + 1) is Action.SPAWN


def test_stop_cancels_a_pending_restart() -> None:
    life, _ = started()
    life.restart(T0 + 2)
    life.stop(T0 + 2.1)
    assert life.exited(T0 + 2.2, 0) is Action.NOTHING
    assert life.state is State.STOPPED


# -- agents.toml --------------------------------------------------------------------------------
INHERIT = Inheritance(master="10.0.0.1:6000", key="sekrit", python="/py")


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_config(text, "agents.toml", INHERIT)


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return caught.value


def test_a_worker_gets_master_name_and_flags_and_the_key_by_environment() -> None:
    config = parse(
        '[node]\nlog_backups = 3\n\n[[agent]]\nname = "r1"\nprogram = "worker"\n'
        'flags = { slots = 2, work_dir = "/srv", tags = ["gpu", "blender"], verbose = true, '
        'quiet = false }\nenv = { A = "b" }\nbackoff_max_s = 30\n'
    )
    (spec,) = config.agents
    assert spec.argv == (
        "/py",
        "-m",
        "farmhand.worker",
        "--master",
        "10.0.0.1:6000",
        "--name",
        "r1",
        "--slots",
        "2",
        "--work-dir",
        "/srv",
        "--tags",
        "gpu,blender",
        "--verbose",
    )
    env = dict(spec.env)
    assert env["FARMHAND_KEY"] == "sekrit" and env["A"] == "b"
    assert "sekrit" not in spec.argv
    assert spec.log_backups == 3 and spec.policy.backoff_max_s == 30
    assert spec.policy.start_retries == 5 and spec.log_max_bytes == 2 * 1024 * 1024


def test_a_tls_master_and_its_ca_are_passed_down() -> None:
    inherit = Inheritance(master="tls://farm.lan:6443", key=None, python="/py", ca="/etc/ca.pem")
    (spec,) = parse_config('[[agent]]\nname = "r1"\nprogram = "worker"\n', "a.toml", inherit).agents
    assert spec.argv[3:5] == ("--master", "tls://farm.lan:6443")
    env = dict(spec.env)
    assert env["FARMHAND_CA"] == "/etc/ca.pem" and env["FARMHAND_MASTER"] == "tls://farm.lan:6443"


def test_known_programs_run_as_modules_that_find_a_checkout_through_pythonpath() -> None:
    # A node started from a checkout (`python node.py`) hands its agents the checkout's folder,
    # so `python -m farmhand.worker` imports it from whatever cwd the agent runs in.
    inherit = Inheritance(master="127.0.0.1:6000", key=None, python="/py", pythonpath="/src")
    worker, tool = parse_config(
        '[[agent]]\nname = "w"\nprogram = "hwagent"\n\n[[agent]]\nname = "t"\nprogram = ["tool"]\n',
        "a.toml",
        inherit,
    ).agents
    assert worker.argv[:3] == ("/py", "-m", "farmhand.hardware")
    assert dict(worker.env)["PYTHONPATH"] == "/src"
    assert "PYTHONPATH" not in dict(tool.env)
    (installed,) = parse_config('[[agent]]\nname = "w"\nprogram = "worker"\n', "a", INHERIT).agents
    assert "PYTHONPATH" not in dict(installed.env)


def test_an_argv_program_runs_as_given_and_a_given_name_flag_wins() -> None:
    config = parse(
        '[[agent]]\nname = "a"\nprogram = ["sleep", "60"]\n\n'
        '[[agent]]\nname = "b"\nprogram = "worker"\nflags = ["--name", "other"]\n'
    )
    assert config.agents[0].argv == ("sleep", "60")
    assert config.agents[0].program == "argv"
    assert config.agents[1].argv.count("--name") == 1


def test_bad_toml_names_line_and_column() -> None:
    error = error_of('[[agent]]\nname = "a"\nprogram = worker\n')
    assert error.line == 3
    assert str(error).startswith("agents.toml:3: column ")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[[agent]]\nname = "a"\nprogram = "wroker"\n', 3, "unknown program 'wroker'"),
        (
            '[[agent]]\nname = "a"\nprogram = "worker"\n\n[[agent]]\nprogram = "worker"\n',
            5,
            "no name",
        ),
        (
            '[[agent]]\nname = "a"\nprogram = "worker"\n\n[[agent]]\nname = "a"\nprogram = ["x"]\n',
            5,
            "duplicate agent name 'a' (first defined on line 1)",
        ),
        ('[[agent]]\nname = "a"\nprogram = "worker"\nrestrat = "always"\n', 4, "unknown key"),
        ('[[agent]]\nname = "a"\nprogram = "worker"\nrestart = "often"\n', 4, "restart must be"),
        ('[[agent]]\nname = "a/b"\nprogram = "worker"\n', 2, "bad name"),
        ('[[agent]]\nname = "a"\n', 1, "has no program"),
        ("[node]\nstart_retries = 0\n", 2, "start_retries must be"),
        ("[nodes]\n", 1, "unknown section 'nodes'"),
    ],
)
def test_semantic_errors_name_the_line(text: str, line: int, words: str) -> None:
    error = error_of(text)
    assert error.line == line, str(error)
    assert words in str(error)
    assert str(error).startswith(f"agents.toml:{line}: ")


def test_equal_specs_compare_equal_wherever_they_are_defined() -> None:
    first = parse('[[agent]]\nname = "a"\nprogram = ["x"]\n').agents[0]
    moved = parse('\n\n[[agent]]\nname = "a"\nprogram = ["x"]\n').agents[0]
    changed = parse('[[agent]]\nname = "a"\nprogram = ["y"]\n').agents[0]
    assert first == moved and first != changed


# -- the rotating writer ----------------------------------------------------------------------
def test_rotation_at_the_size_limit_keeps_the_backups(tmp_path: Path) -> None:
    writer = RotatingWriter(tmp_path / "a.log", max_bytes=100, backups=2)
    for index in range(30):
        writer.write(f"line {index:03d} {'x' * 20}\n".encode())  # 30 bytes each
    writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.log", "a.log.1", "a.log.2"]
    for path in tmp_path.iterdir():
        assert path.stat().st_size <= 100
        assert path.read_bytes().endswith(b"\n")  # whole lines only
    assert (tmp_path / "a.log").read_text().splitlines()[-1].startswith("line 029")
    assert (tmp_path / "a.log.1").read_text().splitlines()[-1].startswith("line 026")


def test_without_backups_the_file_starts_over(tmp_path: Path) -> None:
    writer = RotatingWriter(tmp_path / "a.log", max_bytes=10, backups=0)
    writer.write(b"12345678\n")
    writer.write(b"abc\n")
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["a.log"]
    assert (tmp_path / "a.log").read_bytes() == b"abc\n"


def test_a_big_chunk_of_lines_is_spread_over_files_at_line_boundaries(tmp_path: Path) -> None:
    writer = RotatingWriter(tmp_path / "a.log", max_bytes=100, backups=5)
    writer.write(b"".join(f"{index:029d}\n".encode() for index in range(10)))  # 300 bytes
    writer.write(b"y" * 150 + b"\n")  # longer than the limit: a file of its own
    writer.close()
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert sizes == {"a.log": 151, "a.log.1": 30, "a.log.2": 90, "a.log.3": 90, "a.log.4": 90}
    assert (tmp_path / "a.log.4").read_bytes().startswith(b"0" * 29 + b"\n")  # the oldest
    assert (tmp_path / "a.log.1").read_bytes() == b"0" * 28 + b"9\n"


def test_the_example_configuration_is_valid() -> None:
    inherit = Inheritance(master="127.0.0.1:6000", key=None, python="/py")
    text = (ROOT / "contrib" / "agents.example.toml").read_text()
    config = parse_config(text, "agents.example.toml", inherit)
    assert config.names() == ["render-01", "keg1", "temp-logger"]
    assert config.agents[2].policy.restart == "on-failure"


# -- spawning ---------------------------------------------------------------------------------
def test_a_spawn_that_raises_value_error_is_a_failed_start(tmp_path: Path) -> None:
    # Issue 10 finding 8: Popen raises ValueError (an embedded NUL) and the error path read
    # exc.strerror, which a ValueError does not have: AttributeError instead of a failed start.
    spec = AgentSpec(
        name="nul",
        program="argv",
        argv=("sle\0ep", "60"),
        env=(),
        cwd=None,
        policy=Policy(),
    )
    process = SupervisedProcess(spec, tmp_path)
    try:
        process.start(T0)
        assert process.lifecycle.state is State.BACKOFF
        text = (tmp_path / "nul.log").read_text()
        assert "cannot start sle" in text and "null character" in text
    finally:
        process.close()
