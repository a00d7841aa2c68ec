"""QR codes as inline SVG: what a PC page shows for a phone to scan."""

import xml.etree.ElementTree as ET
from functools import lru_cache

import qrcode
from markupsafe import Markup
from qrcode.image.svg import SvgPathImage

SVG_NS = "http://www.w3.org/2000/svg"


@lru_cache(maxsize=128)  # polling partials redraw the same link every few seconds
def qr_svg(data: str, label: str) -> Markup:
    """The QR code of `data`, sized by CSS (class "qr"); the 4-module quiet zone the standard asks
    for keeps it scannable from a screen. `label` is what a screen reader says."""
    image = qrcode.make(data, image_factory=SvgPathImage, border=4)
    root = ET.fromstring(image.to_string())
    for attribute in ("width", "height"):  # a size in mm would override the CSS
        root.attrib.pop(attribute, None)
    for path in root.iter(f"{{{SVG_NS}}}path"):
        path.attrib.pop("id", None)  # a fixed id would clash with other QR codes on the page
    root.set("class", "qr")
    root.set("role", "img")
    root.set("aria-label", label)
    ET.register_namespace("", SVG_NS)
    return Markup(ET.tostring(root, encoding="unicode"))
