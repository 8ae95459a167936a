"""Photos carrying real EXIF blocks (Pillow's Exif API) and a hand-built XMP APP1 segment."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_DJI = ('drone-dji:RelativeAltitude="+45.20" drone-dji:GimbalPitchDegree="-12.30" '
        'drone-dji:GimbalYawDegree="+101.50" drone-dji:GimbalRollDegree="+0.00" '
        'drone-dji:FlightYawDegree="+99.80" drone-dji:FlightPitchDegree="-2.10"')


def dji_xmp(attributes: str = _DJI) -> bytes:
    """An XMP packet shaped like a DJI drone's (properties as rdf:Description attributes)."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="DJI Meta Data"\n'
        '    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
        '    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"\n'
        f'    tiff:Make="DJI" {attributes}/>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="w"?>').encode()


def exif_block(model: str = "FC6310", focal: float = 8.8, focal35: int | None = 24,
               taken: str = "2024:05:17 10:21:33") -> Image.Exif:
    """IFD0 make/model, the Exif IFD (time, lens) and a GPS IFD (55.67 N, 12.58 W, 45.2 m)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "DJI", model
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x9011], sub[0x920A] = taken, "+02:00", focal
    if focal35:
        sub[0xA405] = focal35
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (55.0, 40.0, 12.5), 3: "W", 4: (12.0, 34.0, 56.7), 5: b"\x00",
                6: 45.2})
    return exif


def write_drone_photo(path: Path, xmp: bytes | None = None, w: int = 120, h: int = 80,
                      **exif) -> Path:
    """A JPEG with :func:`exif_block` and, when given, an XMP APP1 segment after SOI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
        path, exif=exif_block(**exif))
    if xmp is not None:
        data = path.read_bytes()
        body = XMP_HEADER + xmp
        segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
        path.write_bytes(data[:2] + segment + data[2:])
    return path
