"""The local stack's pure decisions: backend choice, command lines, URLs, where run files go."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from deploy.local import stack

pytestmark = pytest.mark.unit

STACK_VARIABLES = (
    "BAOCAO_STACK_DIR",
    "BAOCAO_DATA_DIR",
    "BAOCAO_MONGO_PORT",
    "BAOCAO_FERRETDB_DEBUG_PORT",
    "BAOCAO_FERRETDB_BACKEND",
    "BAOCAO_POSTGRES_PORT",
)


@pytest.fixture(autouse=True)
def own_stack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees a fresh stack folder and none of the caller's stack settings."""
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BAOCAO_STACK_DIR", str(tmp_path / "stack"))
    return tmp_path / "stack"


def test_the_backend_is_postgresql_unless_sqlite_is_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert stack.Layout().ferretdb_backend == "postgresql"
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "sqlite")
    assert stack.Layout().ferretdb_backend == "sqlite"


def test_an_unknown_backend_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "mysql")
    with pytest.raises(stack.StackError, match="sqlite, postgresql"):
        stack.Layout()


def test_main_reports_an_unknown_backend_as_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "postgres")
    assert stack.main(["status"]) == 1
    assert "BAOCAO_FERRETDB_BACKEND='postgres'" in capsys.readouterr().err


def test_the_postgresql_url_names_the_port_and_ferretdb_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert stack.Layout().postgresql_url() == "postgres://postgres@127.0.0.1:5432/ferretdb"
    monkeypatch.setenv("BAOCAO_POSTGRES_PORT", "5433")
    assert stack.Layout().postgresql_url() == "postgres://postgres@127.0.0.1:5433/ferretdb"


def test_the_default_stack_keeps_run_files_and_logs_in_the_stack_folder(
    own_stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = stack.Layout()
    assert (layout.run_dir, layout.log_dir) == (own_stack_dir / "run", own_stack_dir / "logs")
    # naming the default data folder explicitly is still the default stack
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(own_stack_dir / "data"))
    assert stack.Layout().run_dir == own_stack_dir / "run"


def test_a_stack_with_its_own_data_keeps_its_pid_files_beside_that_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "second" / "data"))
    layout = stack.Layout()
    assert layout.run_dir == tmp_path / "second" / "data" / "run"
    assert layout.log_dir == tmp_path / "second" / "data" / "logs"
    assert stack.servers(layout)["ferretdb"].pid_file == layout.run_dir / "ferretdb.pid"


def test_ferretdb_on_sqlite_keeps_its_command_line(
    own_stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "sqlite")
    layout = stack.Layout()
    data = own_stack_dir / "data" / "ferretdb"
    assert stack.ferretdb_command(layout, Path("/bin/ferretdb")) == [
        "/bin/ferretdb",
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/",
        "--listen-addr=127.0.0.1:27017",
        "--telemetry=disable",
        f"--state-dir={data}",
        "--debug-addr=127.0.0.1:8088",
        "--log-level=warn",
    ]


def test_ferretdb_on_postgresql_gets_the_postgresql_handler_and_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "postgresql")
    monkeypatch.setenv("BAOCAO_POSTGRES_PORT", "5433")
    monkeypatch.setenv("BAOCAO_MONGO_PORT", "27018")
    command = stack.ferretdb_command(stack.Layout(), Path("/bin/ferretdb"))
    assert command[1:3] == [
        "--handler=postgresql",
        "--postgresql-url=postgres://postgres@127.0.0.1:5433/ferretdb",
    ]
    assert "--listen-addr=127.0.0.1:27018" in command
    assert not any(word.startswith("--sqlite-url") for word in command)


def test_the_mongodb_line_says_which_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert stack.mongodb_line(stack.Layout()) == (
        "mongodb     mongodb://127.0.0.1:27017/  (FerretDB, PostgreSQL 127.0.0.1:5432)"
    )
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "sqlite")
    assert stack.mongodb_line(stack.Layout()).endswith("(FerretDB, SQLite)")


def test_postgres_listens_on_loopback_with_its_socket_in_the_run_folder(
    own_stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAOCAO_POSTGRES_PORT", "5433")
    layout = stack.Layout()
    assert stack.postgres_command(Path("/pg/bin"), layout) == [
        "/pg/bin/postgres",
        "-D",
        str(own_stack_dir / "data" / "postgres"),
        "-k",
        str(own_stack_dir / "run" / "postgres"),
        "-h",
        "127.0.0.1",
        "-p",
        "5433",
    ]


def test_initdb_makes_a_utf8_cluster_with_trust_for_the_postgres_superuser() -> None:
    command = stack.initdb_command(Path("/pg/bin"), Path("/data/postgres"))
    assert command[:3] == ["/pg/bin/initdb", "-D", "/data/postgres"]
    assert {"--username=postgres", "--auth=trust", "--encoding=UTF8"} <= set(command)


def test_postgres_is_run_as_its_user_and_stopped_with_a_fast_shutdown() -> None:
    postgres = stack.postgres_process(stack.Layout())
    assert postgres.user == "postgres"
    assert postgres.stop_signal == signal.SIGINT
    assert not postgres.stop_group  # the postmaster stops its own children in order


def test_postgres_starts_before_ferretdb_only_when_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert list(stack.servers(stack.Layout())) == ["kafka", "postgres", "ferretdb", "mailpit"]
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "sqlite")
    assert list(stack.servers(stack.Layout())) == ["kafka", "ferretdb", "mailpit"]
    everything = stack.everything(stack.Layout(), every_backend=True)
    assert list(everything)[:4] == ["kafka", "postgres", "ferretdb", "mailpit"]


def test_the_handler_is_read_from_a_running_ferretdbs_command_line() -> None:
    assert stack.handler_of("/x/ferretdb-v1.24.2 --handler=postgresql --listen-addr=a ") == (
        "postgresql"
    )
    assert stack.handler_of("/x/ferretdb-v1.24.2 --listen-addr=a") is None


def test_postgres_binaries_are_found_in_the_first_folder_that_has_them_all(
    tmp_path: Path,
) -> None:
    partial, complete = tmp_path / "partial", tmp_path / "complete"
    for folder, tools in ((partial, ["initdb", "postgres"]), (complete, stack.POSTGRES_TOOLS)):
        folder.mkdir()
        for tool in tools:
            (folder / tool).touch()
    assert stack.postgres_bin_dir([partial, complete]) == complete
    assert stack.postgres_bin_dir([partial]) is None


def test_folders_others_cannot_enter_are_named(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    closed.chmod(0o700)
    tmp_path.chmod(0o755)
    try:
        assert stack.unreachable_folders(closed / "inner" / "postgres")[0] == closed
    finally:
        closed.chmod(0o755)
    assert closed not in stack.unreachable_folders(closed / "inner" / "postgres")


def test_status_names_postgres_only_when_it_is_the_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.main(["status"]) == 0
    assert "postgres     stopped" in capsys.readouterr().out
    monkeypatch.setenv("BAOCAO_FERRETDB_BACKEND", "sqlite")
    assert stack.main(["status"]) == 0
    assert "postgres" not in capsys.readouterr().out


def test_a_user_is_switched_to_only_when_asked() -> None:
    assert stack.as_user(None) == {}
