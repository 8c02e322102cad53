"""``config/feed-archiver.service`` (issue 15): the unit says what README promises (notify with a
watchdog, restart on failure, reload by SIGHUP, a system user, the sandbox), its command lines
are ones our CLI accepts, systemd itself reads it without a complaint, and a wheel ships it."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from aggregator.cli.commands import cli

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "config" / "feed-archiver.service"
REQUIRED = {
    "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure",
    "ExecStart": "/usr/local/bin/aggregator -c /etc/feed-archiver/feeds.yaml run",
    "ExecReload": "/bin/kill -HUP $MAINPID", "User": "feed-archiver",
    "StateDirectory": "feed-archiver", "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/feed-archiver", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
    "ProtectHome": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "", "KillMode": "mixed",
}  # fmt: skip


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None,
                                          comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys keep case
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_the_unit_has_the_sections_and_keys_promised() -> None:
    parsed = unit()
    assert parsed.sections() == ["Unit", "Service", "Install"]
    service = parsed["Service"]
    assert {key: service.get(key) for key in REQUIRED} == REQUIRED
    assert service["WatchdogSec"] == "2min"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in parsed["Unit"]["After"].split()


def test_its_command_lines_are_ones_the_cli_accepts() -> None:
    """The unit cannot drift from the CLI: ExecStart and the commented ExecStartPre parse."""
    text = UNIT.read_text(encoding="utf-8")
    lines = [unit()["Service"]["ExecStart"]]
    lines += [line.removeprefix("#ExecStartPre=") for line in text.splitlines()
              if line.startswith("#ExecStartPre=")]  # fmt: skip
    assert len(lines) == 2
    for line in lines:
        program, *args = shlex.split(line)
        assert program == "/usr/local/bin/aggregator"
        ctx = cli.make_context("aggregator", list(args))
        with ctx:
            name, command, rest = cli.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
            assert name in {"run", "db"}
            assert command is not None
            command.make_context(name or "", rest, parent=ctx)


def test_systemd_analyze_verify_reads_it_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt install systemd)")
    # verify checks that ExecStart's program exists: point it at this environment's one.
    here = shutil.which("aggregator", path=str(Path(sys.executable).parent))
    if here is None:
        pytest.skip("no `aggregator` script beside this Python (pip install -e .)")
    copy = tmp_path / "feed-archiver.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/aggregator", here),
                    encoding="utf-8")
    proc = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "")


def test_systemd_analyze_would_catch_a_misspelt_key(tmp_path: Path) -> None:
    """The check above can fail: a misspelling is a warning on stderr."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt install systemd)")
    copy = tmp_path / "bad.service"
    copy.write_text("[Service]\nExecStart=/bin/true\nProtectSystm=strict\n", encoding="utf-8")
    proc = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert "Unknown key 'ProtectSystm'" in proc.stderr


def test_setuptools_reads_the_unit_as_data_to_install() -> None:
    """setuptools' own reader of pyproject.toml (which validates it) lists the unit to install
    under share/; the wheel test below checks the built file where a wheel can be built."""
    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings():  # "[tool.setuptools] is still *beta*" (setuptools < 69)
        warnings.simplefilter("ignore")
        config = read_configuration(ROOT / "pyproject.toml")
    data = config["tool"]["setuptools"]["data-files"]  # the finished form: (folder, files) pairs
    files = dict(data.items() if isinstance(data, dict) else data)["share/feed-archiver"]
    assert files == ["config/feed-archiver.service"]
    assert (ROOT / files[0]).is_file()


def _can_build_wheels() -> bool:
    import importlib.util

    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _can_build_wheels(), reason="no bdist_wheel offline: setuptools < 70.1 "
                    "and no `wheel` package (pip wheel . with build isolation fetches them)")
def test_a_wheel_ships_the_unit_file(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("feed_archiver-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        shipped = [n for n in names if n.endswith("/share/feed-archiver/feed-archiver.service")]
        assert len(shipped) == 1
        assert archive.read(shipped[0]) == UNIT.read_bytes()
