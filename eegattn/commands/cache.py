"""`eegattn cache`: list the window cache, check it, and remove what is no longer needed.

Examples::

    eegattn cache                      # entries and leftovers, their size and state
    eegattn cache --verify             # also check the windows' checksums (reads everything)
    eegattn cache --clean              # show what --clean --yes would remove
    eegattn cache --clean --yes        # remove leftovers of killed runs, damaged, stale entries
    eegattn cache --remove c1-3f2a --yes

Nothing is removed without ``--yes``, and only the cache's own folders (``c1-*`` / ``c2-*``
entries and ``.tmp-*`` folders) are ever touched. Standard library only at module level
(``eegattn --help`` stays fast).
"""

from __future__ import annotations

import argparse
import time

HELP = "list the window cache (sizes, damaged or stale entries) and clean it"

DESCRIPTION = """\
List the window cache that `eegattn preprocess` (and train) fill: every window entry with its
size, windows and state, the stored recordings they read (counted; listed when not ok), and
the temporary folders that killed runs left behind. Each preprocessed recording is stored once
(r-* folders) and shared by every window entry (c1-* / c2-*) over it; see docs/cache.md.

States: ok; damaged (a file does not match the entry's manifest: truncated, edited or zeroed;
loading it rebuilds it); stale (it can never be used again: made by another cache format,
windows code or MNE version, or recordings it was built from changed or were deleted; a data
folder that is missing altogether counts as moved, not stale); leftover (the temporary folder
of a killed run); in use (a run is building it right now).

--clean removes leftovers, damaged and stale entries; --remove KEY removes the entries you name
(window entries or recordings; a window entry whose recording was removed rebuilds it).
Both only show what they would remove until you add --yes. Nothing else in the folder is
touched."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="window cache folder (default: <project cache>/windows; the "
                        "EEGATTN_CACHE environment variable moves the project cache)")
    parser.add_argument("--verify", action="store_true",
                        help="also check the checksum of every stored recording (reads all "
                        "of them; the listing checks sizes and the small files' checksums)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--clean", action="store_true",
                        help="remove leftovers of killed runs, damaged and stale entries")
    action.add_argument("--remove", nargs="+", default=None, metavar="KEY",
                        help="remove these entries (a key as listed, or its unique start)")
    parser.add_argument("-y", "--yes", action="store_true",
                        help="really remove (without it --clean / --remove only list what "
                        "they would remove)")


def human_size(n: int) -> str:
    """``1234567`` -> ``'1.2 MB'`` (powers of 1000, as ``du --si``)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def _table(items) -> list[str]:
    lines = [f"{'state':<9} {'size':>9} {'windows':>8} {'challenge':>9}  {'modified':<16}  name"]
    for item in items:
        windows = "-" if item.n_windows is None else str(item.n_windows)
        challenge = "-" if item.challenge is None else str(item.challenge)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.modified))
        lines.append(f"{item.state:<9} {human_size(item.size):>9} {windows:>8} {challenge:>9}  "
                     f"{when:<16}  {item.name}")
    return lines


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _select_keys(items, keys, cache_dir) -> list:
    entries = [item for item in items if item.kind in ("entry", "recording")]
    chosen = []
    for key in keys:
        exact = [item for item in entries if item.name == key]
        matches = exact or [item for item in entries if item.name.startswith(key)]
        if not matches:
            raise ValueError(f"no cache entry {key!r} in {cache_dir}; `eegattn cache "
                             f"--cache-dir {cache_dir}` lists them")
        if len(matches) > 1:
            raise ValueError(f"{key!r} starts {len(matches)} entries in {cache_dir} "
                             f"({', '.join(m.name for m in matches[:4])}); give more of the key")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def _remove(chosen, yes: bool, retry: str) -> int:
    from eegattn.data.cache import remove_cache_items

    total = human_size(sum(item.size for item in chosen))
    if not chosen:
        print("nothing to remove")
        return 0
    if not yes:
        print(f"would remove {len(chosen)} folder(s), {total}:")
        for item in chosen:
            print(f"  {item.path} ({item.state}, {human_size(item.size)})")
        print(f"nothing removed; to remove them: {retry} --yes")
        return 0
    removed = remove_cache_items(chosen)
    for item in removed:
        print(f"removed {item.path} ({item.state}, {human_size(item.size)})")
    kept = [item for item in chosen if item not in removed]
    for item in kept:
        print(f"kept {item.path}: a run started building in it meanwhile")
    print(f"removed {len(removed)} folder(s), {human_size(sum(i.size for i in removed))}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eegattn.data.cache import default_window_cache_dir, scan_cache

    cache_dir = Path(args.cache_dir) if args.cache_dir else default_window_cache_dir()
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ValueError(f"--cache-dir {cache_dir} is a file, not a folder; pass the window "
                         "cache folder")
    if args.yes and not (args.clean or args.remove):
        raise ValueError("--yes confirms --clean or --remove KEY; alone it does nothing")
    if not cache_dir.is_dir():
        print(f"window cache {cache_dir}: does not exist yet (nothing built there)")
        return 0
    items = scan_cache(cache_dir, deep=args.verify)
    where = f" --cache-dir {args.cache_dir}" if args.cache_dir else ""
    if args.remove:
        return _remove(_select_keys(items, args.remove, cache_dir), args.yes,
                       f"eegattn cache{where} --remove {' '.join(args.remove)}")
    if args.clean:
        return _remove([item for item in items if item.removable], args.yes,
                       f"eegattn cache{where} --clean")

    entries = [item for item in items if item.kind == "entry"]
    recordings = [item for item in items if item.kind == "recording"]
    temporary = [item for item in items if item.kind == "temporary"]
    head = (f"window cache {cache_dir}: {_plural(len(entries), 'entry', 'entries')} "
            f"({human_size(sum(i.size for i in entries))})")
    if recordings:
        head += (f", {_plural(len(recordings), 'stored recording')} "
                 f"({human_size(sum(i.size for i in recordings))})")
    if temporary:
        head += (f", {_plural(len(temporary), 'temporary folder')} "
                 f"({human_size(sum(i.size for i in temporary))})")
    print(head)
    if not items:
        return 0
    # thousands of sound recordings would drown the table: they are counted in the head line
    print("\n".join(_table([item for item in items
                             if item.kind != "recording" or item.state != "ok"])))
    for item in items:
        if item.state == "damaged":
            print(f"damaged: {item.path}: {item.detail}; loading it rebuilds it, or remove it: "
                  f"eegattn cache{where} --remove {item.name} --yes")
        elif item.state != "ok" or item.detail:
            print(f"{item.state}: {item.path}: {item.detail}")
    removable = [item for item in items if item.removable]
    if removable:
        counts = {state: sum(1 for item in removable if item.state == state)
                  for state in ("leftover", "damaged", "stale")}
        parts = [_plural(counts["leftover"], "leftover")] if counts["leftover"] else []
        parts += [_plural(counts[state], f"{state} entry", f"{state} entries")
                  for state in ("damaged", "stale") if counts[state]]
        print(f"to remove {', '.join(parts)} ({human_size(sum(i.size for i in removable))}): "
              f"eegattn cache{where} --clean --yes")
    return 0
