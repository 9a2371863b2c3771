"""The GitHub workflows, parsed: the GPU book build has each safeguard, and CI matches .ci/run."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _load(name):
    return yaml.safe_load((WORKFLOWS / name).read_text())


@pytest.fixture(scope="module")
def gpu():
    return _load("book-gpu.yml")


@pytest.fixture(scope="module")
def gpu_steps(gpu):
    return gpu["jobs"]["build-book-gpu"]["steps"]


def _uses(steps, action):
    return [s for s in steps if str(s.get("uses", "")).startswith(action + "@")]


def _runs(steps, needle):
    return [s for s in steps if needle in s.get("run", "")]


def _index(steps, step):
    return next(i for i, s in enumerate(steps) if s is step)


def test_every_action_is_pinned_to_a_version():
    for wf in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(wf.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), (wf.name, step["uses"])


def test_python_is_set_up_with_a_pip_cache(gpu, gpu_steps):
    (setup,) = _uses(gpu_steps, "actions/setup-python")
    assert setup["with"]["python-version"] == "${{ env.PYTHON_VERSION }}"
    assert gpu["env"]["PYTHON_VERSION"]
    assert setup["with"]["cache"] == "pip"


def test_the_venv_is_cached_and_keyed_by_what_builds_it(gpu_steps):
    venv = [s for s in _uses(gpu_steps, "actions/cache") if s["with"]["path"] == ".venv"]
    assert len(venv) == 1
    key = venv[0]["with"]["key"]
    for part in ("env.PYTHON_VERSION", "env.TORCH_INDEX", "hashFiles('pyproject.toml'"):
        assert part in key, part


def test_torch_comes_from_one_cuda_index_variable(gpu, gpu_steps):
    index = gpu["env"]["TORCH_INDEX"]
    assert index.startswith("https://download.pytorch.org/whl/cu")
    text = (WORKFLOWS / "book-gpu.yml").read_text()
    assert text.count("download.pytorch.org") == 1, "the CUDA index is named more than once"
    (install,) = _runs(gpu_steps, "make setup")
    assert 'TORCH_INDEX="$TORCH_INDEX"' in install["run"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*\$\(TORCH\) \$\(if \$\(TORCH_INDEX\),--index-url \$\(TORCH_INDEX\)\)",
                     makefile)


def test_the_build_fails_unless_torch_sees_the_gpu(gpu_steps):
    (check,) = _runs(gpu_steps, "nvidia-smi")
    assert "torch.cuda.is_available()" in check["run"] and "sys.exit(" in check["run"]
    (install,) = _runs(gpu_steps, "make setup")
    (book,) = _runs(gpu_steps, "make book")
    assert _index(gpu_steps, install) < _index(gpu_steps, check) < _index(gpu_steps, book)


def test_the_encoder_cache_lives_in_the_workspace_and_is_keyed_by_the_code(gpu, gpu_steps):
    assert gpu["env"]["MMCL_CACHE_DIR"].startswith("${{ github.workspace }}/")
    (cache,) = [s for s in _uses(gpu_steps, "actions/cache")
                if s["with"]["path"] == "${{ env.MMCL_CACHE_DIR }}"]
    key = cache["with"]["key"]
    assert "hashFiles('mmcl_helpers/**'" in key and "env.MMCL_PROFILE" in key
    (book,) = _runs(gpu_steps, "make book")
    assert _index(gpu_steps, cache) < _index(gpu_steps, book)


def test_builds_do_not_overlap(gpu):
    conc = gpu["concurrency"]
    assert "${{ github.ref }}" in conc["group"]
    assert conc["cancel-in-progress"] is False  # a publishing build is never killed halfway


def test_no_cell_can_outlast_its_timeout(gpu, gpu_steps):
    job = gpu["jobs"]["build-book-gpu"]
    cell_limit = int(gpu["env"]["BOOK_TIMEOUT"])
    # Chapter 5's sweep cell, the longest, is estimated at up to 2.3 h on a T4 (issue 16).
    assert cell_limit >= 2.3 * 3600
    assert cell_limit < job["timeout-minutes"] * 60
    (book,) = _runs(gpu_steps, "make book")
    assert 'BOOK_TIMEOUT="$BOOK_TIMEOUT"' in book["run"]
    makefile = (ROOT / "Makefile").read_text()
    # The copy of _config.yml with the timeout (tests/test_editions.py checks what it writes).
    assert "editions book-config --out .book-config.yml" in makefile
    assert "--timeout $(BOOK_TIMEOUT)" in makefile
    assert "--config .book-config.yml" in makefile


def test_the_editions_of_the_built_commit_are_published_and_the_colab_buttons_open_them(gpu, gpu_steps):
    assert gpu["permissions"]["contents"] == "write"  # it pushes the editions branch
    (publish,) = _runs(gpu_steps, "make editions")
    run = publish["run"]
    assert "EDITIONS_FLAGS=--require-clean" in run  # the install cells name the commit checked out
    assert 'git push origin "$editions:refs/heads/colab-editions"' in run
    assert "-p \"$parent\"" in run  # history kept: older books' buttons still resolve
    assert 'echo "EDITIONS_REF=$editions" >> "$GITHUB_ENV"' in run
    (book,) = _runs(gpu_steps, "make book")
    assert 'BOOK_LAUNCH_REF="$EDITIONS_REF"' in book["run"] and "BOOK_LAUNCH_PATH=colab" in book["run"]
    assert _index(gpu_steps, publish) < _index(gpu_steps, book)
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\nbook: ", 1)[1].split("\n\n", 1)[0]
    assert "--launch-ref $(BOOK_LAUNCH_REF) --launch-path $(BOOK_LAUNCH_PATH)" in target
    # Always built from the copy, in cache mode behind the guard that empties a stale cache.
    assert "--execute-notebooks cache" in target
    assert "book_support.rebuild --profile $(BOOK_PROFILE) --config .book-config.yml" in target


def test_reports_are_kept_on_failure_and_on_timeout(gpu_steps):
    (upload,) = _uses(gpu_steps, "actions/upload-artifact")
    assert upload["if"].replace(" ", "") == "failure()||cancelled()"
    assert "_build/html/reports/" in upload["with"]["path"]


def test_mpi3d_is_downloaded_once_into_the_runner_cache_and_checksummed(gpu_steps):
    (step,) = _runs(gpu_steps, "download_mpi3d")
    assert "runner.tool_cache" in step["env"]["MPI3D_DIR"]  # persists; checkout cleans the workspace
    run = step["run"]
    assert 'if [ ! -f "$file" ]' in run  # downloaded only when missing
    assert run.count("sha256sum -c") >= 1 and "check_mpi3d_file" in run
    assert "MMCL_MPI3D_PATH=" in run and "GITHUB_ENV" in run
    (book,) = _runs(gpu_steps, "make book")
    assert _index(gpu_steps, step) < _index(gpu_steps, book)


def test_the_book_is_published_only_after_it_built(gpu):
    assert gpu["jobs"]["publish"]["needs"] == "build-book-gpu"
    assert gpu["env"]["MMCL_PROFILE"] == "gpu"


def test_ci_runs_what_ci_run_runs_with_the_same_safeguards():
    ci = _load("ci.yml")
    steps = ci["jobs"]["test-cpu"]["steps"]
    commands = [s["run"].strip() for s in steps if "run" in s]
    script = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
              if line.startswith("make ")]
    assert commands == script == ["make test", "make gpu-dry", "make colab-check"]
    (setup,) = _uses(steps, "actions/setup-python")
    assert setup["with"]["cache"] == "pip"
    (upload,) = _uses(steps, "actions/upload-artifact")
    assert upload["if"].replace(" ", "") == "failure()||cancelled()"
    assert "${{ github.ref }}" in ci["concurrency"]["group"]
    makefile = (ROOT / "Makefile").read_text()
    dry = makefile.split("\ngpu-dry:", 1)[1].split("\n\n", 1)[0]
    for part in ("MMCL_PROFILE=gpu", "MMCL_DRY_RUN=1", "mpi3d_synthetic", "MMCL_MPI3D_PATH=", "--nbmake"):
        assert part in dry, part
    test = re.search(r"^test: (.*)$", makefile, flags=re.M).group(1).split()
    assert "editions" in test and "unit" in test  # make test builds the editions; test_editions checks them
    check = makefile.split("\ncolab-check:", 1)[1].split("\n\n", 1)[0]
    assert "build --require-clean" in check and "editions colab-check --torch '$(TORCH)'" in check
