"""Every fenced code block in README.md runs here, so the tour stays true.

Blocks are found anew on every run: a section someone adds is tested with
no change to this file. How a block runs depends on its language and on an
optional marker, an HTML comment right before its fence (invisible on
GitHub):

- ```python: a complete program, run by a fresh interpreter in an empty
  directory; it must exit 0 within GUARD seconds. A line ``EXPR  # -> VALUE``
  is checked: the expression statement EXPR must equal VALUE (any Python
  expression, evaluated after EXPR in the program's namespace). A ``# ->``
  anywhere else is an error. Servers run in threads in the block itself.
- ```sh: the block's commands (lines, or ``a && b`` steps) run with bash from
  the repository root and must each exit 0. A ``python -m pip install`` step
  is not run (the test command installed the package and its extras before
  this suite ran); the extras it names must exist in pyproject.toml.
- ``<!-- test-command -->`` before a sh block: the command CI runs. It is not
  run here (it runs this suite); ``.ci/run --print`` must print exactly it.
- ``<!-- readme-test ... -->``, one ``key: value`` directive per line:

  * ``run: COMMAND`` runs COMMAND instead of the block's last step: a bounded
    reduced form of it, so COMMAND must start with that step and only add
    arguments (``python -m bench all`` plus flags for a short matrix).
  * ``banner: REGEX`` makes the last step a server: it must print a line
    matching REGEX (stdout or stderr), then exit 0 on SIGINT.
  * ``creates: PATH``: the file must exist afterwards (relative to the
    repository root).
  * ``file: NAME`` (a block in any language, e.g. a ```proto schema): the
    block is not run but saved as NAME in the directory where every later
    block runs (a python block's working directory, a sh block's
    ``{tmp}``), so that they can use it.

  ``{tmp}`` in a directive is a fresh temporary directory.

Any other language, marker key or ``<!-- readme-test`` spelling fails here,
naming the README line, so no block is silently left out.
"""
from __future__ import annotations

import ast
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import tokenize
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fastnet import native
from helpers import GUARD

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DIRECTIVES = ("run", "banner", "creates", "file")
CHECK = "# ->"
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"<!--\s*(test-command|readme-test)\b(.*?)-->", re.S)


@dataclass
class Block:
    """One fenced block: its language, code, first code line in README.md,
    and the marker right before its fence (kind and directives)."""
    lang: str
    code: str
    line: int
    marker: str | None = None
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang or 'plain'}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, each with its marker."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"README.md:{i + 1}: a code fence that never closes"
        block = Block(opening.group(1), "\n".join(lines[i + 1 : end]) + "\n", i + 2)
        block.marker, block.directives = _marker_before(lines, i)
        blocks.append(block)
        i = end + 1
    return blocks


def _marker_before(lines: list[str], fence: int) -> tuple[str | None, dict[str, str]]:
    """The marker comment ending on the line right before line index ``fence``."""
    if fence == 0 or not lines[fence - 1].rstrip().endswith("-->"):
        return None, {}
    start = fence - 1
    while "<!--" not in lines[start]:
        start -= 1
    comment = "\n".join(lines[start:fence])
    found = _MARKER.search(comment)
    assert found is not None, f"README.md:{start + 1}: a comment before a block that is no marker"
    kind, body = found.groups()
    directives = {}
    for raw in body.strip().splitlines():
        key, sep, value = raw.strip().partition(":")
        assert sep and key in DIRECTIVES, (
            f"README.md:{start + 1}: unknown readme-test directive {raw.strip()!r} "
            f"(known: {', '.join(DIRECTIVES)})")
        directives[key] = value.strip()
    return kind, directives


BLOCKS = readme_blocks(README.read_text())
# The README's examples run on the C engine; FASTNET_PURE=1 turns it off (CI
# never does: there FASTNET_REQUIRE_NATIVE=1 makes a missing C build an error).
needs_c = pytest.mark.skipif(native.backend != "c", reason="the README's examples use the C engine")


def test_readme_has_the_blocks_this_file_knows_how_to_run():
    assert sum(b.lang == "python" for b in BLOCKS) >= 3
    assert sum(b.marker == "test-command" for b in BLOCKS) == 1
    for b in BLOCKS:
        assert b.lang in ("python", "sh") or "file" in b.directives, (
            f"README.md:{b.line}: a ```{b.lang} block: tests/test_readme.py runs python and "
            "sh blocks, and saves a block marked 'file: NAME' (see its docstring)")
        if "file" in b.directives:
            assert re.fullmatch(r"[\w.-]+", b.directives["file"]), (
                f"README.md:{b.line}: file: takes a plain file name")
    # The parser finds a marker and its directives, and refuses a bad one.
    (sample,) = readme_blocks("<!-- readme-test\nrun: x --y\n-->\n```sh\nx\n```\n")
    assert (sample.marker, sample.directives, sample.line) == ("readme-test", {"run": "x --y"}, 5)
    with pytest.raises(AssertionError, match="unknown readme-test directive"):
        readme_blocks("<!-- readme-test\nskip: yes\n-->\n```sh\nx\n```\n")


def save_files_before(block: Block, directory: Path) -> None:
    """Write every ``file: NAME`` block that comes before ``block`` into directory."""
    for earlier in BLOCKS:
        if earlier.line >= block.line:
            break
        if "file" in earlier.directives:
            (directory / earlier.directives["file"]).write_text(earlier.code)


def test_file_blocks_are_saved_for_the_blocks_after_them(tmp_path, monkeypatch):
    text = ("<!-- readme-test\nfile: hello.proto\n-->\n```proto\nsyntax = \"proto3\";\n```\n\n"
            "```python\nprint(open('hello.proto').read())\n```\n")
    blocks = readme_blocks(text)
    assert [b.directives for b in blocks] == [{"file": "hello.proto"}, {}]
    monkeypatch.setitem(globals(), "BLOCKS", blocks)
    save_files_before(blocks[0], tmp_path)
    assert not list(tmp_path.iterdir())  # only blocks after it see it
    save_files_before(blocks[1], tmp_path)
    assert (tmp_path / "hello.proto").read_text() == 'syntax = "proto3";\n'


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# --- python blocks ------------------------------------------------------------


def checked_program(code: str, first_line: int) -> ast.Module:
    """``code`` parsed with README line numbers, each ``EXPR  # -> VALUE``
    line turned into a call of ``__readme_check__``; an arrow comment that
    does not follow an expression statement is a SyntaxError."""
    tree = ast.parse(code)
    ast.increment_lineno(tree, first_line - 1)
    checks: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT and tok.string.startswith(CHECK):
            checks[tok.start[0] + first_line - 1] = tok.string[len(CHECK):].strip()

    class Checks(ast.NodeTransformer):
        def visit_Expr(self, node: ast.Expr) -> ast.AST:
            want = checks.pop(node.end_lineno or node.lineno, None)
            if want is None:
                return node
            call = ast.Call(ast.Name("__readme_check__", ast.Load()),
                            [node.value, ast.parse(want, mode="eval").body,
                             ast.Constant(node.lineno),
                             ast.Constant(ast.unparse(node.value)), ast.Constant(want)], [])
            return ast.copy_location(ast.Expr(call), node)

    tree = ast.fix_missing_locations(Checks().visit(tree))
    if checks:
        line = min(checks)
        raise SyntaxError(f"README.md:{line}: '{CHECK}' must follow an expression statement")
    return tree


def _check(got: Any, want: Any, line: int, expr: str, said: str) -> None:
    if got != want:
        raise AssertionError(f"README.md:{line}: {expr} is {got!r}; the README says {said}")


def run_block(path: str, first_line: int) -> None:
    """Run a README python block saved at ``path`` (entry point of the
    subprocess test_python_block starts)."""
    code = Path(path).read_text()
    program = compile(checked_program(code, first_line), str(README), "exec")
    try:
        exec(program, {"__name__": "__main__", "__readme_check__": _check})
    except BaseException:
        # Exit now: a server thread the block started must not keep the
        # process (and the test) waiting for the guard.
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(GUARD)
            if thread.is_alive():
                print(f"README.md:{first_line}: the block left thread {thread.name!r} running "
                      "(stop what it starts)", file=sys.stderr, flush=True)
                os._exit(1)


def test_checked_program_turns_arrows_into_checks():
    ns: dict[str, Any] = {"__readme_check__": _check}
    exec(compile(checked_program("x = 2\nx + 1  # -> 3\n", 10), "t", "exec"), ns)
    with pytest.raises(AssertionError, match=r"README.md:11: x \+ 1 is 3; the README says 4"):
        exec(compile(checked_program("x = 2\nx + 1  # -> 4\n", 10), "t", "exec"), ns)
    with pytest.raises(SyntaxError, match="README.md:10: '# ->' must follow an expression"):
        checked_program("x = 2  # -> 2\n", 10)


@needs_c
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python" and "file" not in b.directives], ids=lambda b: b.id)
def test_python_block(block, tmp_path):
    assert not block.directives, f"README.md:{block.line}: python blocks take no directives"
    save_files_before(block, tmp_path)
    source = tmp_path / "block.py"
    source.write_text(block.code)
    entry = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
             f"import test_readme; test_readme.run_block({str(source)!r}, {block.line})")
    run = subprocess.run([sys.executable, "-c", entry], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=GUARD * 2)
    assert run.returncode == 0, f"README.md:{block.line}: the block failed:\n{run.stderr}"


# --- sh blocks ----------------------------------------------------------------


def sh_steps(code: str) -> list[str]:
    """The commands of a sh block: one per line (backslash continuations
    joined), each ``a && b`` split into its steps."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [step.strip() for line in joined.splitlines() if line.strip()
            for step in line.split("&&")]


def _check_install(step: str) -> None:
    """A ``python -m pip install`` step: the extras it names exist."""
    extras = set(re.findall(r"\[([\w,-]+)\]", step))
    declared = re.search(r"\[project\.optional-dependencies\](.*?)(?:\n\[|\Z)",
                         (ROOT / "pyproject.toml").read_text(), re.S)
    names = set(re.findall(r"^(\w[\w-]*)\s*=", declared.group(1), re.M)) if declared else set()
    for group in extras:
        for extra in group.split(","):
            assert extra in names, f"pip install names extra {extra!r}, not in pyproject.toml"


def _run_server(argv: list[str], banner: str) -> None:
    """Start a server, wait for its banner line, SIGINT it, expect exit 0."""
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        seen: list[str] = []
        assert proc.stdout is not None
        # Reading blocks: the guard is a timer that kills a silent server.
        timer = threading.Timer(GUARD, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                seen.append(line)
                if re.search(banner, line):
                    break
        finally:
            timer.cancel()
        assert seen and re.search(banner, seen[-1]), (
            f"no line matching {banner!r} in the server's output:\n{''.join(seen)}")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=GUARD)
        assert proc.returncode == 0, f"exit {proc.returncode} after SIGINT:\n{''.join(seen)}{out}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_c
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "sh" and "file" not in b.directives], ids=lambda b: b.id)
def test_sh_block(block, tmp_path):
    if block.marker == "test-command":
        run = subprocess.run([str(ROOT / ".ci" / "run"), "--print"], capture_output=True,
                             text=True, timeout=GUARD)
        assert run.returncode == 0, run.stderr
        assert run.stdout == block.code, "CI would not run the README's test command"
        for step in sh_steps(block.code):
            if step.startswith("python -m pip install"):
                _check_install(step)
        return
    save_files_before(block, tmp_path)
    directives = {k: v.replace("{tmp}", str(tmp_path)) for k, v in block.directives.items()}
    steps = sh_steps(block.code)
    if "run" in directives:
        assert directives["run"].startswith(steps[-1]), (
            f"README.md:{block.line}: run: must be the block's last step plus arguments")
        steps[-1] = directives["run"]
    for i, step in enumerate(steps):
        if step.startswith("python -m pip install"):
            _check_install(step)
        elif i == len(steps) - 1 and "banner" in directives:
            _run_server(["bash", "-c", "exec " + step], directives["banner"])
        else:
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", step], cwd=ROOT, env=_env(),
                                 capture_output=True, text=True, timeout=GUARD * 10)
            assert run.returncode == 0, (
                f"README.md:{block.line}: {shlex.quote(step)} exited {run.returncode}:\n"
                f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    if "creates" in directives:
        assert (ROOT / directives["creates"]).is_file(), f"{directives['creates']} was not written"


# --- links --------------------------------------------------------------------


def test_readme_links_resolve_in_the_repository():
    # A user reads the README in the repository: every relative link and image
    # must be there (the design document included, not a page outside the tree).
    text = README.read_text()
    links = [target for target in re.findall(r"\]\(([^)\s]+)\)", text)
             if not re.match(r"[a-z]+:", target)]
    assert "ARCHITECTURE.md" in links
    for target in links:
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"README.md links {target}, which is not in the repository"
    assert "../" not in "".join(links)
