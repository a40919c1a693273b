"""The release: reproducible Lambda zips, and the module package users deploy
without Rust (`scripts/package`).

    python -m release zip BOOTSTRAP ZIP     one function's zip, byte-identical for the same binary
    python -m release package [--dist DIR]  dist/database-backup-<version>/, its .tar.gz, SHA256SUMS
    python -m release check DIST            the package holds what it must and nothing else; sums verify

The package is a complete module directory: the module's `.tf` files (and its vault part,
`modules/vault`), its `statemachine/` (the definitions and the contract they are rendered with),
`lambda/backup-<function>/bootstrap.zip` with `lambda/SHA256SUMS.txt` (the
layout the module reads, locally or from S3), README, CHANGELOG and LICENSE.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = "database-backup"
# Every file of the release has this time: the zip format's earliest, the same for every build.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
TAR_MTIME = 315532800  # 1980-01-01T00:00:00Z
# The state machines' definitions and the contract they are rendered with: all of statemachine/
# (a list written out here once left the drill machine's out of the release).
DEFINITIONS = tuple(sorted(p.name for p in (ROOT / "statemachine").glob("*.json")))
# The zips' checksums, as the module reads them from S3; `.txt` so that S3 serves it as text,
# which is what the provider's aws_s3_object data source needs to read its body.
LAMBDA_SUMS = "SHA256SUMS.txt"
PACKAGED_DOCS = ("CHANGELOG.md", "LICENSE")


def workspace_field(name: str) -> str:
    """A field of Cargo.toml's [workspace.package]: the release's version is the workspace's,
    which the functions carry too."""
    text = (ROOT / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    match = re.search(rf'^{name}\s*=\s*"([^"]+)"', section, re.MULTILINE)
    if not match:
        raise SystemExit(f"Cargo.toml: [workspace.package] has no {name}")
    return match.group(1)


def version() -> str:
    return workspace_field("version")


def release_name() -> str:
    """database-backup-<version>: the package directory's and the tarball's name."""
    return f"{NAME}-{version()}"


def functions() -> list[str]:
    return sorted(json.loads((ROOT / "statemachine" / "contract.json").read_text())["functions"])


def write_zip(bootstrap: Path, destination: Path) -> None:
    """A zip of one executable `bootstrap` whose bytes depend only on the binary's."""
    info = zipfile.ZipInfo("bootstrap", date_time=ZIP_TIME)
    info.create_system = 3  # Unix, so that the mode below is read
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, bootstrap.read_bytes(), compresslevel=9)
    destination.write_bytes(buffer.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sums(directory: Path, paths: list[Path], destination: Path) -> None:
    """`sha256sum -c` format, paths relative to `directory`, sorted."""
    lines = sorted(f"{sha256(p)}  {p.relative_to(directory).as_posix()}\n" for p in paths)
    destination.write_text("".join(lines))


def module_files() -> list[str]:
    """The module's `.tf` files and its submodules' (modules/vault), relative to terraform/."""
    terraform = ROOT / "terraform"
    return sorted(p.relative_to(terraform).as_posix() for pattern in ("*.tf", "modules/*/*.tf")
                  for p in terraform.glob(pattern))


def expected_files() -> list[str]:
    """Every file the package directory holds, relative to it."""
    return sorted(
        module_files()
        + [f"statemachine/{d}" for d in DEFINITIONS]
        + [f"lambda/backup-{f}/bootstrap.zip" for f in functions()]
        + [f"lambda/{LAMBDA_SUMS}", "README.md", *PACKAGED_DOCS]
    )


def package_readme() -> str:
    """The repository's README for the package: its links into the repository point at the
    release's tag there (the package holds only the module), except to what the package holds."""
    text = (ROOT / "README.md").read_text()
    repository = repository_url()
    base = f"{repository}/blob/v{version()}/"

    def absolute(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"[a-z]+:|#", target) or target in PACKAGED_DOCS:
            return match.group(0)
        return f"{match.group(1)}{base}{target})"

    return re.sub(r"(\]\()([^)\s]+)\)", absolute, text)


def repository_url() -> str:
    return workspace_field("repository").rstrip("/")


def build_package(dist: Path, zips: Path) -> Path:
    """dist/database-backup-<version>/, its tarball and dist/SHA256SUMS, from the zips in `zips`."""
    name = release_name()
    directory = dist / name
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "statemachine").mkdir(parents=True)
    for tf in module_files():
        (directory / tf).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "terraform" / tf, directory / tf)
    for definition in DEFINITIONS:
        shutil.copyfile(ROOT / "statemachine" / definition, directory / "statemachine" / definition)
    zip_paths = []
    for function in functions():
        source = zips / f"backup-{function}" / "bootstrap.zip"
        if not source.is_file():
            raise SystemExit(f"{source} is missing: run scripts/build-lambdas")
        target = directory / "lambda" / f"backup-{function}" / "bootstrap.zip"
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
        zip_paths.append(target)
    write_sums(directory / "lambda", zip_paths, directory / "lambda" / LAMBDA_SUMS)
    (directory / "README.md").write_text(package_readme())
    for doc in PACKAGED_DOCS:
        shutil.copyfile(ROOT / doc, directory / doc)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    tarball = dist / f"{name}.tar.gz"
    write_tarball(directory, files, tarball)
    write_sums(dist, [tarball, *files], dist / "SHA256SUMS")
    return directory


def write_tarball(directory: Path, files: list[Path], destination: Path) -> None:
    """A gzipped tar of `directory` whose bytes depend only on the files' contents."""
    def normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = TAR_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        held = [p.relative_to(directory.parent) for p in files]
        entries = sorted({*held, *(d for p in held for d in p.parents if d != Path("."))})
        for entry in entries:
            tar.add(directory.parent / entry, arcname=entry.as_posix(), recursive=False, filter=normalized)
    with open(destination, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())


def check_package(dist: Path, show: bool = False) -> list[str]:
    """What is wrong with the package in `dist`: files missing or unexpected, sums that do
    not verify; `show`: print what it holds, with sizes."""
    name = release_name()
    directory = dist / name
    problems = []
    held = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    expected = expected_files()
    problems += [f"{name}/{f} is missing" for f in sorted(set(expected) - set(held))]
    problems += [f"{name}/{f} is not part of the module" for f in sorted(set(held) - set(expected))]
    links = [p for p in directory.rglob("*") if p.is_symlink()]
    problems += [f"{p} is a symbolic link" for p in links]
    summed: dict[Path, dict[str, str]] = {}
    for sums, base in ((dist / "SHA256SUMS", dist), (directory / "lambda" / LAMBDA_SUMS, directory / "lambda")):
        if not sums.is_file():
            problems.append(f"{sums} is missing")
            continue
        summed[sums] = {relative: digest for digest, relative in
                        (line.split("  ", 1) for line in sums.read_text().splitlines())}
        for relative, digest in summed[sums].items():
            path = base / relative
            if not path.is_file():
                problems.append(f"{sums.name}: {relative} is missing")
            elif sha256(path) != digest:
                problems.append(f"{sums.name}: {relative} does not match its checksum")
    listed = summed.get(dist / "SHA256SUMS", {})
    problems += [f"SHA256SUMS does not list {name}/{f}" for f in held if f"{name}/{f}" not in listed]
    with tarfile.open(dist / f"{name}.tar.gz") as tar:
        in_tar = sorted(m.name.removeprefix(f"{name}/") for m in tar.getmembers() if m.isfile())
    if in_tar != held:
        problems.append(f"{name}.tar.gz holds {in_tar}, the directory {held}")
    if show:
        for relative in held:
            print(f"{(directory / relative).stat().st_size:>10}  {name}/{relative}")
        print(f"{(dist / f'{name}.tar.gz').stat().st_size:>10}  {name}.tar.gz")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m release", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    zip_cmd = commands.add_parser("zip", help="one function's reproducible zip")
    zip_cmd.add_argument("bootstrap", type=Path)
    zip_cmd.add_argument("zip", type=Path)
    package_cmd = commands.add_parser("package", help="the module package, its tarball and checksums")
    package_cmd.add_argument("--dist", type=Path, default=ROOT / "dist")
    package_cmd.add_argument("--zips", type=Path, default=ROOT / "target" / "lambda")
    check_cmd = commands.add_parser("check", help="check a package")
    check_cmd.add_argument("dist", type=Path, nargs="?", default=ROOT / "dist")
    commands.add_parser("version", help="the release's version")
    args = parser.parse_args()
    if args.command == "zip":
        write_zip(args.bootstrap, args.zip)
    elif args.command == "version":
        print(version())
    elif args.command == "package":
        directory = build_package(args.dist, args.zips)
        print(f"wrote {directory}/, {directory}.tar.gz and {args.dist / 'SHA256SUMS'}")
    else:
        problems = check_package(args.dist, show=True)
        for problem in problems:
            print(f"package: {problem}", file=sys.stderr)
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
