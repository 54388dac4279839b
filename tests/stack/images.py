"""What a function's image holds, rebuilt without Docker from its Dockerfile (for tests and benchmarks).

The Dockerfile is parsed, not copied: its COPY lines are replayed into a task-root folder, then the RUN lines
that follow them (compiling the package ahead); its `pip install -r` becomes a `pip install --target` of the
same requirements file into a cached folder, followed by the commands chained to it with `&&` (trimming what
the function never loads), run in that folder as they run in the image's task root.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / ".venv-tools" / "image-sites"
# The Lambda base image ships the runtime interface client; a plain Python needs it added.
RUNTIME_INTERFACE_CLIENT = "awslambdaric==4.2.2"


@dataclass(frozen=True)
class ImagePlan:
    dockerfile: Path
    copies: list[tuple[list[str], str]]  # (sources relative to the context, destination in the task root)
    requirements: str  # the file `pip install -r` names, relative to the task root
    install_commands: list[str]  # chained to the `pip install` with `&&`, run where it installed
    handler: str  # CMD
    package_commands: list[str]  # RUN lines after the `pip install`, replayed in the task root


def parse_dockerfile(dockerfile: Path) -> ImagePlan:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    copies, requirements, handler, install_commands, package_commands = [], None, None, [], []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        instruction, args = words[0].upper(), words[1:]
        if instruction == "COPY":
            copies.append((args[:-1], args[-1]))
        elif instruction == "RUN" and args[:2] == ["pip", "install"]:
            install, *install_commands = (part.strip() for part in line.split(None, 1)[1].split("&&"))
            words = shlex.split(install)
            requirements = words[words.index("-r") + 1]
        elif instruction == "RUN" and requirements is not None:
            package_commands.append(line.split(None, 1)[1])
        elif instruction == "RUN":
            raise ValueError(f"{dockerfile}: a RUN before the `pip install -r` is not replayed: {line}")
        elif instruction == "CMD":
            handler = re.findall(r'"([^"]+)"', line)[0]
    if requirements is None or handler is None:
        raise ValueError(f"{dockerfile}: expected a `pip install -r` and a CMD")
    return ImagePlan(dockerfile, copies, requirements, install_commands, handler, package_commands)


def assemble_task_root(plan: ImagePlan, task_root: Path) -> Path:
    """Replay the COPY lines from the repository (the build context) into task_root, then the RUN lines after
    them (compiling the package ahead, as the image does)."""
    copy_context(plan, task_root)
    run_commands(plan.package_commands, task_root)
    return task_root


def copy_context(plan: ImagePlan, task_root: Path) -> None:
    for sources, destination in plan.copies:
        for source in sources:
            target = task_root / destination
            if (ROOT / source).is_dir():  # Docker copies a directory's contents into the destination
                shutil.copytree(ROOT / source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
                continue
            if destination.endswith("/") or len(sources) > 1:
                target = target / Path(source).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)


def run_commands(commands: list[str], task_root: Path) -> None:
    """Shell commands of the Dockerfile, run in task_root as the image runs them in ${LAMBDA_TASK_ROOT}."""
    interpreter = Path(sys.executable).parent  # the image's `python` is the Python that runs the tests
    environment = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(task_root),
        "PATH": f"{interpreter}{os.pathsep}{os.environ['PATH']}",
    }
    for command in commands:
        subprocess.run(["/bin/bash", "-c", command], cwd=task_root, env=environment, check=True)


def requirements_site(plan: ImagePlan, with_runtime_client: bool = True) -> Path:
    """The function's pinned requirements installed with pip --target, cached by their content."""
    context = SITES / "_context" / plan.dockerfile.parent.name
    copy_context(plan, context)
    extra = [RUNTIME_INTERFACE_CLIENT] if with_runtime_client else []
    return install_site(
        plan.dockerfile.parent.name, ["-r", str(context / plan.requirements), *extra], plan.install_commands
    )


def install_site(name: str, requirements: list[str], commands: list[str] | None = None) -> Path:
    """`pip install --target` of these requirements, then these commands in it, into a folder kept until they
    change."""
    contents = [Path(a).read_bytes() if Path(a).is_file() else a.encode() for a in requirements]
    for path in (Path(a) for a in requirements if Path(a).is_file()):  # files a requirements file includes
        contents += [p.read_bytes() for p in sorted(path.parent.parent.glob("*/requirements.txt"))]
    contents += [command.encode() for command in commands or []]
    digest = hashlib.sha256(b"\0".join([*contents, sys.version.encode()])).hexdigest()[:16]
    site = SITES / f"{name}-{digest}"
    if not (site / ".complete").exists():
        shutil.rmtree(site, ignore_errors=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--only-binary=:all:", "--target", str(site)]
        subprocess.run([*command, *requirements], check=True)
        run_commands(commands or [], site)
        (site / ".complete").touch()
    return site
