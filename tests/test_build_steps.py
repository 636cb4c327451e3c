"""Build steps, Debian packages in derived bases, and the build's hints (no Docker).

The Docker tests (tests/integration/test_build_steps.py) build the fixtures for real;
these cover the logic each of them relies on, one decision at a time.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from builder import cli
from builder.errors import BaseImageError, BuildFailed
from builder.image import bases, hints, pipeline, steps
from builder.image.config import KitConfig
from builder.image.pipeline import BuildOptions, build_project, explained
from kitbuild_runtime import buildsteps
from tests.fakes import FakeBases, FakeImages, RecordingPublisher, fake_fetch, fake_resolve
from tests.test_build_render import build_plan

PROJECTS = Path(__file__).parent / "fixtures" / "projects"
ROOT = Path(__file__).parent.parent


def render(
    tmp_path: Path,
    project: Path,
    *,
    settings: str | None = None,
    config: KitConfig | None = None,
) -> tuple[str, FakeBases, list[str]]:
    """Render a project's context with fakes; return its Dockerfile, the bases and output."""
    sources = FakeBases()
    said: list[str] = []
    tmp_path.mkdir(parents=True, exist_ok=True)
    build_project(
        BuildOptions(project_dir=project, settings=settings, config=config or KitConfig()),
        sources=sources,
        publisher=RecordingPublisher(tmp_path / "context"),
        fetch=fake_fetch,
        resolve=fake_resolve,
        say=said.append,
        workdir=tmp_path,
    )
    return (tmp_path / "context" / "Dockerfile").read_text(), sources, said


# ------------------------------------------------------------------- derived bases


def test_derived_base_tag_depends_on_the_sorted_package_list() -> None:
    """The same packages in any order give one tag; another list, kind or suite another."""
    one = bases.derived_reference("runtime", "bookworm", ["libpq5", "libmagic1"])

    assert one == bases.derived_reference("runtime", "bookworm", ["libmagic1", "libpq5"])
    assert one.startswith("kitbuild/python:bookworm-")
    assert one != bases.derived_reference("runtime", "bookworm", ["libpq5"])
    assert one != bases.derived_reference("runtime", "trixie", ["libpq5", "libmagic1"])
    assert bases.derived_reference("build", "bookworm", ["libpq5"]).startswith(
        "kitbuild/python-build:bookworm-"
    )
    assert "kitbuild/python:bookworm" == bases.derived_reference("runtime", "bookworm", [])


def test_derived_base_is_made_once_with_the_kinds_packages_and_the_extras() -> None:
    """A missing derived base is made by mmdebstrap with both lists; a present one is reused."""
    gateway = FakeImages({"kitbuild/python:bookworm", "kitbuild/python-build:bookworm"})
    argvs: list[list[str]] = []

    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argvs.append(list(argv))
        Path(argv[-1]).write_bytes(b"")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def ensure() -> bases.BaseImages:
        return bases.ensure_suite(
            "bookworm",
            gateway,
            extra={"runtime": ("libmagic1",)},
            runner=runner,
            which=lambda _name: "/usr/bin/mmdebstrap",
            say=lambda _line: None,
        )

    first, second = ensure(), ensure()

    assert first == second
    assert "kitbuild/python-build:bookworm" == first.build
    assert [first.runtime] == gateway.imported
    assert 1 == len(argvs)
    include = next(arg for arg in argvs[0] if arg.startswith("--include="))
    assert {"python3", "libmariadb3", "libmagic1"} <= set(include[10:].split(","))


def test_unknown_debian_package_is_one_line_naming_it_and_the_suite() -> None:
    """Apt's "Unable to locate package" becomes one line; nothing is imported (tagged)."""
    gateway = FakeImages()

    def failing(argv: object) -> subprocess.CompletedProcess[str]:
        stderr = (
            "I: downloading packages with apt...\n"
            "E: Unable to locate package libno-such-thing\n"
            "E: setup failed: E: apt-get ... install python3 libno-such-thing failed\n"
        )
        return subprocess.CompletedProcess([], 1, "", stderr)

    with pytest.raises(BaseImageError) as error:
        bases.make_base_image(
            "runtime",
            "trixie",
            gateway,
            extra=("libmagic1", "libno-such-thing"),
            runner=failing,
            which=lambda _name: "/usr/bin/mmdebstrap",
            say=lambda _line: None,
        )

    message = str(error.value)
    assert message.startswith("Debian trixie has no package libno-such-thing;")
    assert "\n" not in message
    assert [] == gateway.imported


def test_base_image_refuses_packages_in_one_line(tmp_path: Path) -> None:
    """--base-image with Debian packages: one line, exit 1, nothing fetched or built."""
    err = io.StringIO()
    fake_fetch.calls.clear()
    code = cli.main(
        [
            "build",
            str(ROOT / "examples" / "mysite"),
            "--base-image",
            "team/python:3.12",
            "--runtime-package",
            "libmagic1",
            "--render-only",
            str(tmp_path / "out"),
        ],
        stdout=io.StringIO(),
        stderr=err,
    )

    assert 1 == code
    assert err.getvalue().startswith("kitbuild: error: --base-image team/python:3.12: ")
    assert "cannot add Debian packages (libmagic1)" in err.getvalue()
    assert 1 == err.getvalue().count("\n")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------- what is rendered


def test_packages_and_translations_choose_derived_bases(tmp_path: Path) -> None:
    """The table's packages go to their stage; .po files add gettext to the runtime."""
    dockerfile, sources, _ = render(tmp_path, PROJECTS / "syspkg-app")

    assert sources.packages == steps.SystemPackages(("libpq-dev",), ("libpq5", "libmagic1"))
    assert f"FROM {bases.derived_reference('build', 'bookworm', ['libpq-dev'])} AS build" in (
        dockerfile
    )
    assert build_plan(dockerfile)["compilemessages"] is False

    dockerfile, sources, _ = render(tmp_path / "c", PROJECTS / "compress-app")
    assert sources.packages == steps.SystemPackages((), ("gettext",))
    assert "FROM kitbuild/python-build:bookworm AS build" in dockerfile
    assert build_plan(dockerfile)["compilemessages"] is True


def test_plan_carries_commands_and_build_env_but_the_image_env_does_not(tmp_path: Path) -> None:
    """build-env reaches the build steps' plan only; no ENV line of the image names it."""
    dockerfile, _, _ = render(tmp_path, PROJECTS / "compress-app")
    plan = build_plan(dockerfile)

    assert {"SHOP_BUILD_MARK": "from-build-env"} == plan["env"]
    assert ['printf "%s" "$SHOP_BUILD_MARK" > build-mark.txt'] == plan["commands"]
    env_block = dockerfile[dockerfile.index("ENV PATH") : dockerfile.index("RUN groupadd")]
    assert "SHOP_BUILD_MARK" not in env_block


def test_collectstatic_flag_overrides_static_root(tmp_path: Path) -> None:
    """--no-collectstatic skips it where STATIC_ROOT is set; --collectstatic forces it."""
    off, _, _ = render(
        tmp_path / "off", ROOT / "examples" / "mysite", config=KitConfig(collectstatic=False)
    )
    on, _, _ = render(
        tmp_path / "on", PROJECTS / "pyproject-app", config=KitConfig(collectstatic=True)
    )

    assert build_plan(off)["collectstatic"] is False
    assert build_plan(on)["collectstatic"] is True


def test_build_steps_stay_in_the_one_run_after_the_code(tmp_path: Path) -> None:
    """After COPY app/ there is one RUN: the build steps and compileall, nothing more.

    So a code-only change re-runs no more steps than it did before the build steps.
    """
    dockerfile, _, _ = render(tmp_path, PROJECTS / "compress-app")
    after_code = dockerfile[dockerfile.index("COPY app/ /app/") :]

    assert 1 == after_code.count("\nRUN ")
    assert "kitbuild_runtime.buildsteps" in after_code
    assert "compileall" in after_code


def test_has_translations_skips_virtualenvs(tmp_path: Path) -> None:
    """Catalogues count in LC_MESSAGES, not inside a venv, nor .po files elsewhere."""
    (tmp_path / ".venv" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / ".venv" / "fr" / "LC_MESSAGES" / "django.po").write_text("")
    (tmp_path / "docs" / "locales").mkdir(parents=True)
    (tmp_path / "docs" / "locales" / "index.po").write_text("")
    assert not steps.has_translations(tmp_path)

    (tmp_path / "locale" / "de" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "locale" / "de" / "LC_MESSAGES" / "django.po").write_text("")
    assert steps.has_translations(tmp_path)


# ----------------------------------------------------------------------- the hints


@pytest.mark.parametrize(
    ("default", "siblings", "expected"),
    [
        ("shop.settings.dev", ["base", "dev", "production"], "shop.settings.production"),
        ("config.settings.local", ["local", "prod", "test"], "config.settings.prod"),
        ("site.settings_dev", ["settings_dev", "settings_prod", "urls"], "site.settings_prod"),
        ("config.settings.development", ["development", "base"], None),
        ("config.settings.production", ["development", "production"], None),
        ("mysite.settings", ["settings", "settings_prod"], None),
        ("shop.settings.dev", ["base", "dev", "product"], "shop.settings.product"),
        ("shop.settings.local", ["local", "deploy", "test"], "shop.settings.deploy"),
    ],
)
def test_production_sibling(default: str, siblings: list[str], expected: str | None) -> None:
    """A development-looking default with a production-looking module beside it."""
    assert expected == hints.production_sibling(default, siblings)


def test_build_names_the_production_settings_and_the_flag(tmp_path: Path) -> None:
    """compress-app defaults to shop.settings.dev beside production.py: the build says so."""
    _, _, said = render(tmp_path, PROJECTS / "compress-app")
    _, _, said_with_flag = render(
        tmp_path / "flag", PROJECTS / "compress-app", settings="shop.settings.production"
    )

    notes = [line for line in said if "--settings" in line]
    assert 1 == len(notes)
    assert "shop.settings.dev" in notes[0]
    assert "--settings shop.settings.production" in notes[0]
    assert not [line for line in said_with_flag if "--settings" in line]


@pytest.mark.parametrize(
    ("default", "siblings", "in_package", "expected"),
    [
        # Outside a settings package only "settings" names, or a production word alone.
        (
            "blog.settings",
            ["settings", "prod_settings", "products", "urls", "production"],
            False,
            ["blog.prod_settings", "blog.production"],
        ),
        ("shop.settings.dev", ["dev", "product", "deploy", "base"], True, [
            "shop.settings.deploy", "shop.settings.product",
        ]),
        ("shop.settings.production", ["production", "deploy"], True, []),
        ("shop.settings.base", ["base", "dev_local"], True, []),
    ],
)  # fmt: skip
def test_production_candidates(
    default: str, siblings: list[str], in_package: bool, expected: list[str]
) -> None:
    """Production-looking modules beside a default that does not look like production."""
    assert expected == hints.production_candidates(
        default, siblings, in_settings_package=in_package
    )


def test_build_lists_every_production_looking_module(tmp_path: Path) -> None:
    """settings-names defaults to shop.settings.dev beside product.py and deploy.py: both named."""
    _, _, said = render(tmp_path, PROJECTS / "settings-names")

    (note,) = [line for line in said if "--settings" in line]
    assert note == (
        "kitbuild: note: manage.py defaults to shop.settings.dev, which looks like development "
        "settings, and these look like production settings: shop.settings.deploy, "
        "shop.settings.product; to build with one, pass --settings MODULE "
        "(or settings in [tool.kitbuild])"
    )


def test_build_names_prod_settings_beside_a_plain_settings_module(tmp_path: Path) -> None:
    """blog.settings beside blog/prod_settings.py (and an app module products.py): named."""
    _, _, said = render(tmp_path, PROJECTS / "prod-settings-module")

    (note,) = [line for line in said if "--settings" in line]
    assert "manage.py defaults to blog.settings and blog.prod_settings is beside it" in note
    assert "--settings blog.prod_settings" in note
    assert "products" not in note


def test_build_names_the_settings_the_wsgi_module_assigns(tmp_path: Path) -> None:
    """wsgi.py assigning another module than manage.py's default: the note names it first."""
    project = tmp_path / "site"
    shutil.copytree(PROJECTS / "settings-names", project)
    (project / "shop" / "wsgi.py").write_text(
        "import os\nfrom django.core.wsgi import get_wsgi_application\n"
        'os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings.deploy"\n'
        "application = get_wsgi_application()\n"
    )

    _, _, said = render(tmp_path / "out", project)

    (note,) = [line for line in said if "--settings" in line]
    assert note.startswith(
        "kitbuild: note: manage.py defaults to shop.settings.dev, but shop.wsgi sets "
        "shop.settings.deploy; also beside it: shop.settings.product; kitbuild builds and "
        "serves shop.settings.dev; to build with shop.settings.deploy, pass --settings "
        "shop.settings.deploy"
    )


PIP_23_PSYCOPG2 = """\
Processing /kitbuild/wheels/psycopg2-2.9.10.tar.gz
  Preparing metadata (setup.py): started
  Preparing metadata (setup.py): finished with status 'error'
  error: subprocess-exited-with-error

  Error: pg_config executable not found.

error: metadata-generation-failed
"""

PIP_25_LDAP = """\
  Building wheel for python-ldap (pyproject.toml): finished with status 'error'
  ERROR: Failed building wheel for python-ldap
Failed to build python-ldap
ERROR: Failed to build installable wheels for some pyproject.toml based projects (python-ldap)
"""

# uv 0.13, the build stage's installer, as the classic builder streams it (no terminal).
UV_LDAP = """\
error: Failed to build `python-ldap==3.4.4`
  cause: The build backend returned an error
  cause: Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit status: 1)
         Modules/common.h:15:10: fatal error: lber.h: No such file or directory
hint: This error likely indicates that you need to install a library that provides `lber.h`
"""


PIP_23_LEGACY_PYCURL = """\
  Running setup.py install for pycurl: started
  Running setup.py install for pycurl: finished with status 'error'
  error: subprocess-exited-with-error
error: legacy-install-failure

\u00d7 Encountered error while trying to install package.
╰─> pycurl
"""


def test_compile_hint_names_the_packages_to_add() -> None:
    """Known source packages that failed to compile get their Debian packages named."""
    assert ["psycopg2"] == hints.failed_compiles(PIP_23_PSYCOPG2)
    assert ["python-ldap"] == hints.failed_compiles(PIP_25_LDAP)
    assert ["pycurl"] == hints.failed_compiles(PIP_23_LEGACY_PYCURL)
    assert ["python-ldap"] == hints.failed_compiles(UV_LDAP)

    psycopg2 = hints.compile_hint(PIP_23_PSYCOPG2, "bookworm")
    ldap = hints.compile_hint(PIP_25_LDAP, "trixie")

    assert psycopg2 is not None
    assert "--build-package libpq-dev --runtime-package libpq5" in psycopg2
    assert ldap is not None
    assert "--build-package libldap2-dev --build-package libsasl2-dev" in ldap
    assert "--runtime-package libldap2" in ldap  # the library's name on trixie
    assert hints.compile_hint("ERROR: Failed building wheel for unknownpkg\n", "bookworm") is None


@pytest.mark.network
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="needs mmdebstrap")
@pytest.mark.parametrize("suite", [spec.name for spec in bases.suites()])
def test_every_package_a_compile_hint_names_installs_on_its_suite(
    suite: str, tmp_path: Path
) -> None:
    """apt, simulated by mmdebstrap on the suite, installs every package the hints name there."""
    renamed = hints.RENAMED.get(suite, {})
    named = sorted(
        {package for build, _ in hints.HEADERS.values() for package in build}
        | {renamed.get(p, p) for _, runtime in hints.HEADERS.values() for p in runtime}
    )
    include = f"--include={','.join(named)}"
    result = subprocess.run(
        ["mmdebstrap", "--simulate", "--variant=apt", include, suite, str(tmp_path / "root.tar")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == result.returncode, bases.missing_packages(result.stderr, named) or result.stderr
    assert "libldap2" in named if suite == "trixie" else "libldap-2.5-0" in named


def test_failed_build_step_and_compile_are_explained_in_one_line() -> None:
    """The engine's failure is rewritten to name the kitbuild step, or the headers."""
    error = BuildFailed("build failed at step 15/17 (RUN python -m kitbuild_runtime...): code 1")
    # As the classic builder streams a step's stderr: in colour codes.
    output = (
        f"Traceback ...\n\x1b[91m{buildsteps.FAILED}manage.py compress: "
        "OfflineGenerationError: x\n\x1b[0m"
    )

    assert (
        "build failed at step 15/17, in build step manage.py compress: OfflineGenerationError: x"
        == str(explained(error, output, "bookworm"))
    )
    compile_error = explained(error, PIP_23_PSYCOPG2, "bookworm")
    assert "installing the dependencies: psycopg2 needs system headers" in str(compile_error)
    from_uv = explained(error, UV_LDAP, "bookworm")
    assert "installing the dependencies: python-ldap needs system headers" in str(from_uv)
    assert error is explained(error, "some other failure\n", "bookworm")


# ------------------------------------------------------------------ buildsteps itself


def test_buildsteps_runs_commands_with_build_env_and_names_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands run in order with build-env set; the first failing one is named, exit 1."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KIT_MARK", raising=False)
    plan = buildsteps.plan_argument(
        False,
        False,
        ['printf "%s" "$KIT_MARK" > mark.txt', "exit 3", "touch never.txt"],
        {"KIT_MARK": "built"},
    )
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)

    code = buildsteps.main([plan])

    assert 1 == code
    assert "built" == (tmp_path / "mark.txt").read_text()
    assert not (tmp_path / "never.txt").exists()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{buildsteps.FAILED}build command 'exit 3': exit status 3" == last


def test_plan_argument_is_one_line_json() -> None:
    """Newlines and quotes in commands stay inside one JSON line."""
    text = buildsteps.plan_argument(True, True, ["echo 'a'\necho \"b\""], {"A": "1"})

    assert "\n" not in text
    assert ["echo 'a'\necho \"b\""] == json.loads(text)["commands"]


@pytest.mark.parametrize(
    ("gunicorn", "added"),
    [
        ("gunicorn==20.1.0", True),  # imports pkg_resources
        ("gunicorn<21", True),
        ("gunicorn>=20", False),  # may be a newer one: the resolver's choice
        ("gunicorn==23.0.0", False),
        ("gunicorn", False),
        (None, False),  # kitbuild's own gunicorn
    ],
)
def test_a_gunicorn_older_than_21_brings_setuptools(gunicorn: str | None, added: bool) -> None:
    """Gunicorn before 21 imports pkg_resources: kitbuild adds a setuptools that has it."""
    names = {"django", "mysqlclient", "setproctitle"} | ({"gunicorn"} if gunicorn else set())

    lines = pipeline.kit_additions(names, gunicorn)

    assert added == (pipeline.PKG_RESOURCES_REQUIREMENT in lines)
