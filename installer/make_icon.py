"""Renders resources/icon.svg to build/installer/icon.png (512 px) and icon.ico: PyInstaller turns
the PNG into the executables' .ico / .icns itself (with Pillow); Inno Setup wants the .ico."""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = 512


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - painting needs the application object
    image = QImage(SIZE, SIZE, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(ROOT / "resources" / "icon.svg")).render(painter)
    painter.end()
    out = ROOT / "build" / "installer" / "icon.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        print(f"could not write {out}", file=sys.stderr)
        return 1
    Image.open(out).save(out.with_suffix(".ico"), sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (256, 256)])
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
