"""Point the course's Colab badge and notebook 04's clone URL at the repository that hosts the project.

    python scripts/set_repository.py ACCOUNT/NAME          # e.g. once the project is on GitHub
    python scripts/set_repository.py --check                # does the badge agree with REPO_URL?

Notebook 04 names the repository in two places that must agree: the "Open in Colab" badge (a
Markdown link, which cannot read a variable) and `REPO_URL` in its setup cell (which a fresh Colab
runtime clones). This script is the one place to set them: it writes both from ACCOUNT/NAME. Until
it has run, the badge holds the placeholder `OWNER/arasfsr` and `REPO_URL` is empty (the notebook
says so in its first cell).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_train_on_celebahq.ipynb"
PLACEHOLDER = "OWNER/arasfsr"
BADGE = re.compile(r"(https://colab\.research\.google\.com/github/)([\w.-]+/[\w.-]+)(/blob/main/notebooks/)")
REPO_URL = re.compile(r'^REPO_URL = "([^"]*)"', re.M)
NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


def read(path: Path = NOTEBOOK) -> tuple[str, str]:
    """(the badge's ACCOUNT/NAME, REPO_URL) as the notebook holds them."""
    nb = nbformat.read(path, as_version=4)
    badges = [m.group(2) for c in nb.cells if c.cell_type == "markdown" for m in BADGE.finditer(c.source)]
    urls = [m.group(1) for c in nb.cells if c.cell_type == "code" for m in REPO_URL.finditer(c.source)]
    if len(badges) != 1 or len(urls) != 1:
        raise ValueError(f"{path.name}: expected one Colab badge and one REPO_URL line, found {len(badges)} and {len(urls)}")
    return badges[0], urls[0]


def agree(badge: str, url: str) -> bool:
    """The placeholder with an empty URL, or the same ACCOUNT/NAME in both."""
    if badge == PLACEHOLDER:
        return url == ""
    return url == f"https://github.com/{badge}.git"


def write(name: str, path: Path = NOTEBOOK) -> None:
    if not NAME.match(name):
        raise ValueError(f"{name!r}: give the GitHub account and repository as ACCOUNT/NAME")
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = BADGE.sub(lambda m: m.group(1) + name + m.group(3), cell.source)
        elif cell.cell_type == "code":
            cell.source = REPO_URL.sub(f'REPO_URL = "https://github.com/{name}.git"', cell.source)
    nbformat.write(nb, path)
    badge, url = read(path)
    assert badge == name and agree(badge, url), (badge, url)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", help="ACCOUNT/NAME of the GitHub repository")
    parser.add_argument("--check", action="store_true", help="only check that the badge and REPO_URL agree")
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check or not args.name:
        badge, url = read(args.notebook)
        ok = agree(badge, url)
        print(f"badge {badge}, REPO_URL {url or '(empty)'}: {'they agree' if ok else 'THEY DISAGREE'}"
              + (" (placeholder: run with ACCOUNT/NAME once the repository is hosted)" if badge == PLACEHOLDER else ""))
        return 0 if ok else 1
    try:
        write(args.name, args.notebook)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.notebook.name}: badge and REPO_URL now point at github.com/{args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
