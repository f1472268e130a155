"""emoji-32 / emoji-64: every renderable glyph of Noto Color Emoji, on white, centred, square.

Source: Debian ``fonts-noto-color-emoji`` (``apt-get install fonts-noto-color-emoji``), rendered
with Pillow at the font's only bitmap size (109 px, ``embedded_color=True``). Glyphs are every
non-ASCII code point in the font's cmap plus every ligature sequence of its GSUB (ZWJ
families, skin tones, flags, keycaps), when Pillow has raqm to shape them. Each glyph is
cropped to its alpha bounding box, centred on a transparent square, composited on white
and resized (Lanczos). Identical renderings are kept once. Every 10th glyph by a hash of its
code points goes to the test split, so the split does not move when the font gains glyphs.

Layout: ``OUT/{train,test}/<codepoints>.png``, ``OUT/metadata.csv`` (file, split,
codepoints, name, group) and ``OUT/dataset.json``.

emoji-groups-32 is the same images in one folder per Unicode emoji group (smileys-emotion,
people-body, animals-nature, ... flags; ``other`` for glyphs that are not emoji), the labels
class-conditional models train on: ``OUT/{train,test}/<group>/<codepoints>.png``. The groups
come from ``emoji-test.txt`` of Debian ``unicode-data`` (``apt-get install unicode-data``).
"""

from __future__ import annotations

import csv
import hashlib
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from studio.core import media
from studio.data.common import write_manifest

FONT_PATHS = (
    Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
    Path("/usr/share/fonts/noto/NotoColorEmoji.ttf"),
    Path("/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf"),
)
FONT_SIZE = 109  # the font's only bitmap strike
CANVAS = 200
TEST_EVERY = 10
_SKIP_CATEGORIES = ("Cc", "Cf", "Mn", "Me", "Zs", "Co", "Cn")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
OTHER_GROUP = "other"


def find_font() -> Path:
    for path in FONT_PATHS:
        if path.exists():
            return path
    raise FileNotFoundError("Noto Color Emoji is not installed: run `apt-get install fonts-noto-color-emoji`")


def glyph_sequences(font_path: Path, with_ligatures: bool = True) -> list[str]:
    """Single non-ASCII code points of the cmap, then the GSUB ligature sequences, sorted."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path))
    cmap = font.getBestCmap()
    singles = {
        chr(cp) for cp in cmap
        if cp >= 0x80 and unicodedata.category(chr(cp)) not in _SKIP_CATEGORIES
    }
    sequences: set[str] = set()
    if with_ligatures and "GSUB" in font:
        by_glyph: dict[str, int] = {}
        for cp, glyph in sorted(cmap.items()):
            by_glyph.setdefault(glyph, cp)
        for lookup in font["GSUB"].table.LookupList.Lookup:
            if lookup.LookupType != 4:
                continue
            for table in lookup.SubTable:
                for first, ligatures in table.ligatures.items():
                    for ligature in ligatures:
                        glyphs = [first, *ligature.Component]
                        if all(g in by_glyph for g in glyphs):
                            sequences.add("".join(chr(by_glyph[g]) for g in glyphs))
    return sorted(singles, key=_key) + sorted(sequences - singles, key=_key)


def emoji_groups(path: Path = EMOJI_TEST) -> dict[str, str]:
    """``group_key`` of each emoji -> folder name of its Unicode emoji group, from emoji-test.txt
    (lines ``1F600 ; fully-qualified # ...`` under ``# group: Smileys & Emotion``)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `apt-get install unicode-data`")
    groups: dict[str, str] = {}
    group = OTHER_GROUP
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = "-".join(line.partition(":")[2].replace("&", " ").lower().split())
        elif line and not line.startswith("#"):
            text = "".join(chr(int(cp, 16)) for cp in line.partition(";")[0].split())
            groups.setdefault(group_key(text), group)
    return groups


def group_key(text: str) -> str:
    """The code points of a sequence without joiners and variation selectors, sorted: the
    font's ligatures list the parts of a ZWJ sequence in glyph order, not Unicode's."""
    return codepoints("".join(sorted(c for c in text if c not in "\u200d\ufe0f")))


def _key(text: str) -> tuple[int, ...]:
    return (len(text), *map(ord, text))


def codepoints(text: str) -> str:
    return "-".join(f"{ord(c):x}" for c in text)


def glyph_name(text: str) -> str:
    names = [unicodedata.name(c, f"U+{ord(c):04X}") for c in text if c not in "\u200d\ufe0f"]
    return " + ".join(names)


def render(font, text: str) -> np.ndarray | None:
    """The glyph as RGBA, cropped to its ink and centred on a transparent square; None if blank."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (CANVAS * max(1, len(text)), CANVAS), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((16, 16), text, font=font, embedded_color=True)
    rgba = np.asarray(image)
    ys, xs = np.nonzero(rgba[..., 3])
    if len(xs) == 0:
        return None
    crop = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape[:2]
    if w > CANVAS - 16:  # shaping failed: the sequence came out as several glyphs
        return None
    side = max(h, w)
    square = np.zeros((side, side, 4), np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = crop
    return square


def to_size(rgba: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    rgb = media.to_rgb(rgba, background=255)
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def is_test(text: str) -> bool:
    return int(hashlib.sha256(codepoints(text).encode()).hexdigest(), 16) % TEST_EVERY == 0


def build(out: Path, size: int, grouped: bool = False) -> dict:
    from PIL import ImageFont, features

    font_path = find_font()
    groups = emoji_groups() if grouped else {}
    shaping = features.check("raqm")
    layout = ImageFont.Layout.RAQM if shaping else ImageFont.Layout.BASIC
    font = ImageFont.truetype(str(font_path), FONT_SIZE, layout_engine=layout)
    out = Path(out)
    for split in ("train", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
    seen: set[bytes] = set()
    rows, counts, blank = [], {"train": 0, "test": 0}, 0
    sequences = glyph_sequences(font_path, with_ligatures=shaping)
    for text in sequences:
        rgba = render(font, text)
        if rgba is None:
            blank += 1
            continue
        digest = hashlib.sha256(rgba.tobytes()).digest()
        if digest in seen:
            continue
        seen.add(digest)
        split = "test" if is_test(text) else "train"
        group = groups.get(group_key(text), OTHER_GROUP) if grouped else ""
        file = f"{split}/{group}/{codepoints(text)}.png" if grouped else f"{split}/{codepoints(text)}.png"
        (out / file).parent.mkdir(exist_ok=True)
        (out / file).write_bytes(media.encode_png(to_size(rgba, size)))
        rows.append((file, split, codepoints(text), glyph_name(text), group))
        counts[split] += 1
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("file", "split", "codepoints", "name", "group"))
        writer.writerows(rows)
    extra = {}
    if grouped:
        per_group = Counter(row[4] for row in rows)
        extra = {"groups": dict(sorted(per_group.items())),
                 "group_source": f"{EMOJI_TEST} (Debian unicode-data); glyphs it does not list: {OTHER_GROUP!r}"}
    return write_manifest(out, {
        **extra,
        "name": f"emoji-groups-{size}" if grouped else f"emoji-{size}",
        "source": f"{font_path} (Debian fonts-noto-color-emoji), rendered with Pillow at {FONT_SIZE} px",
        "licence": "Noto Color Emoji font: SIL Open Font License 1.1 (Google); images are renderings of the font",
        "resolution": f"{size}x{size} RGB on white",
        "glyphs": {"candidates": len(sequences), "blank": blank, "duplicates": len(sequences) - blank - len(rows),
                   "ligature_sequences": shaping},
        "splits": counts,
        "split_rule": f"test if sha256(codepoints) % {TEST_EVERY} == 0",
    })


def build_32(out: Path) -> dict:
    return build(out, 32)


def build_64(out: Path) -> dict:
    return build(out, 64)


def build_groups_32(out: Path) -> dict:
    return build(out, 32, grouped=True)
