"""Plant identifying metadata the way phones, screenshot tools and editors do.

Each writer returns the exiftool tag names it planted, so the labels say what
should be gone after sanitising. EXIF is written with Pillow; IPTC and the
richer XMP go through one exiftool run for the whole corpus (`ExiftoolBatch`).
"""

from __future__ import annotations

import datetime as dt
import random
import struct
import subprocess
from pathlib import Path

from PIL import Image, PngImagePlugin, TiffImagePlugin

PHONES = [("Apple", "iPhone 13"), ("Apple", "iPhone 15 Pro"), ("samsung", "SM-G991B"), ("Google", "Pixel 7"),
          ("Xiaomi", "Redmi Note 12"), ("OnePlus", "CPH2449")]


# The smallest maker note exiftool parses as one: Apple's header and an IFD with
# one entry (MakerNoteVersion = 14). Real ones hold serials and more.
APPLE_MAKERNOTE = (b"Apple iOS\x00" + b"\x00\x01" + b"MM" + b"\x00\x01"
                   + b"\x00\x01\x00\x09\x00\x00\x00\x01\x00\x00\x00\x0e" + b"\x00\x00\x00\x00")


def _dms(value: float):
    v = abs(value)
    d = int(v)
    m = int((v - d) * 60)
    s = round(((v - d) * 60 - m) * 60, 2)
    return (TiffImagePlugin.IFDRational(d, 1), TiffImagePlugin.IFDRational(m, 1),
            TiffImagePlugin.IFDRational(int(s * 100), 100))


def phone_exif(rng: random.Random, when: dt.datetime, owner: str, orientation: int = 1,
               full: bool = True) -> tuple[Image.Exif, list[str]]:
    """EXIF as a phone camera writes it, plus the owner/serial fields some set."""
    make, model = rng.choice(PHONES)
    ex = Image.Exif()
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    ex[0x010F] = make
    ex[0x0110] = model
    ex[0x0131] = f"{rng.randint(14, 18)}.{rng.randint(0, 6)}"
    ex[0x0132] = stamp
    ex[0x0112] = orientation
    tags = ["Make", "Model", "Software", "ModifyDate", "Orientation"]
    exif_ifd = ex.get_ifd(0x8769)
    exif_ifd[0x9003] = stamp
    exif_ifd[0x9004] = stamp
    exif_ifd[0x9010] = "+01:00"
    tags += ["DateTimeOriginal", "CreateDate", "OffsetTime"]
    if full:
        ex[0x013B] = owner  # Artist
        ex[0x8298] = f"(c) {owner}"
        ex[0x010E] = "ward round"  # ImageDescription
        exif_ifd[0x9286] = b"ASCII\x00\x00\x00" + f"bed {rng.randint(1, 30)}, {owner}".encode()  # UserComment
        exif_ifd[0xA430] = owner  # CameraOwnerName (exiftool: OwnerName)
        exif_ifd[0xA431] = f"{rng.randint(10**9, 10**10 - 1)}"  # BodySerialNumber (exiftool: SerialNumber)
        exif_ifd[0xA435] = f"L{rng.randint(10**6, 10**7 - 1)}"  # LensSerialNumber
        exif_ifd[0x927C] = APPLE_MAKERNOTE
        tags += ["Artist", "Copyright", "ImageDescription", "UserComment", "OwnerName", "SerialNumber",
                 "LensSerialNumber", "MakerNotes:MakerNoteVersion"]
    gps = ex.get_ifd(0x8825)
    lat, lon = rng.uniform(50.5, 53.5), rng.uniform(-3.0, 7.0)
    gps[1] = "N"
    gps[2] = _dms(lat)
    gps[3] = "E" if lon >= 0 else "W"
    gps[4] = _dms(lon)
    gps[5] = b"\x00"
    gps[6] = TiffImagePlugin.IFDRational(rng.randint(0, 20000), 100)
    gps[29] = when.strftime("%Y:%m:%d")
    tags += ["GPSLatitude", "GPSLongitude", "GPSAltitude", "GPSDateStamp"]
    return ex, tags


def xmp_packet(owner: str, when: dt.datetime, city: str) -> bytes:
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">
   <dc:creator><rdf:Seq><rdf:li>{owner}</rdf:li></rdf:Seq></dc:creator>
   <xmp:CreateDate>{when.isoformat()}</xmp:CreateDate>
   <photoshop:City>{city}</photoshop:City>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


XMP_TAGS = ["XMP-dc:Creator", "XMP-xmp:CreateDate", "XMP-photoshop:City"]


def png_info(rng: random.Random, owner: str, when: dt.datetime) -> tuple[PngImagePlugin.PngInfo, list[str]]:
    info = PngImagePlugin.PngInfo()
    tags = []
    if rng.random() < 0.8:
        info.add_text("Author", owner)
        info.add_text("Comment", f"screenshot of chart, bed {rng.randint(1, 30)}")
        tags += ["PNG:Author", "PNG:Comment"]
    if rng.random() < 0.5:
        info.add_itxt("Description", f"ward {rng.randint(1, 12)} {owner}", lang="en", tkey="Description")
        tags.append("PNG:Description")
    if rng.random() < 0.4:
        info.add_text("Software", "Snipping Tool")
        tags.append("PNG:Software")
    if rng.random() < 0.5:
        info.add(b"tIME", struct.pack(">HBBBBB", when.year, when.month, when.day, when.hour, when.minute,
                                      when.second))
        tags.append("PNG:ModifyDate")
    if rng.random() < 0.4:  # XMP in an iTXt chunk, as Photoshop/macOS write it
        info.add_itxt("XML:com.adobe.xmp", xmp_packet(owner, when, "Leeds").decode(), lang="", tkey="")
        tags += XMP_TAGS
    return info, tags


def save(img: Image.Image, path: Path, fmt: str, rng: random.Random, *, exif: Image.Exif | None = None,
         exif_tags: list[str] = (), owner: str = "J. Smith", when: dt.datetime | None = None,
         plant: bool = True, quality: int = 90) -> list[str]:
    """Encode `img` as `fmt` at `path`, planting metadata fitting the format. Returns planted tags."""
    when = when or dt.datetime(2024, 5, 17, 10, 31, 2)
    planted: list[str] = []
    kw: dict = {}
    if fmt == "jpeg":
        kw = {"quality": quality, "subsampling": rng.choice([0, 2, 2])}
        if plant and exif is not None:
            kw["exif"] = exif.tobytes()
            planted += list(exif_tags)
        if plant and rng.random() < 0.3:
            kw["comment"] = f"patient {owner}"
            planted.append("File:Comment")
        if plant and rng.random() < 0.3:
            kw["xmp"] = xmp_packet(owner, when, "Utrecht")
            planted += XMP_TAGS
        img.convert("RGB").save(path, "JPEG", **kw)
    elif fmt == "heic":
        kw = {"quality": quality}
        if plant and exif is not None:
            kw["exif"] = exif.tobytes()
            planted += list(exif_tags)
        if plant and rng.random() < 0.4:
            kw["xmp"] = xmp_packet(owner, when, "Gent")
            planted += XMP_TAGS
        img.convert("RGB").save(path, "HEIF", **kw)
    elif fmt == "png":
        if plant:
            info, tags = png_info(rng, owner, when)
            kw["pnginfo"] = info
            planted += tags
            if rng.random() < 0.3:
                ex = Image.Exif()
                ex[0x013B] = owner
                ex[0x0132] = when.strftime("%Y:%m:%d %H:%M:%S")
                kw["exif"] = ex.tobytes()
                planted += ["Artist", "ModifyDate"]
        img.save(path, "PNG", **kw)
    elif fmt == "webp":
        kw = {"quality": quality, "method": 4}
        if plant:
            ex = exif or Image.Exif()
            if exif is None:
                ex[0x013B] = owner
                ex[0x010E] = f"chart of {owner}"
                exif_tags = ["Artist", "ImageDescription"]
            kw["exif"] = ex.tobytes()
            planted += list(exif_tags)
            if rng.random() < 0.5:
                kw["xmp"] = xmp_packet(owner, when, "Lille")
                planted += XMP_TAGS
        img.convert("RGB").save(path, "WEBP", **kw)
    elif fmt == "gif":
        if plant:
            kw["comment"] = f"chart {owner}"
            planted.append("GIF:Comment")
        img.convert("RGB").quantize(colors=rng.choice([64, 128, 256]), dither=Image.Dither.NONE).save(path, "GIF", **kw)
    elif fmt == "tiff":
        if plant:
            ti = TiffImagePlugin.ImageFileDirectory_v2()
            ti[270] = f"chart of {owner}"  # ImageDescription
            ti[315] = owner  # Artist
            ti[306] = when.strftime("%Y:%m:%d %H:%M:%S")  # DateTime
            ti[33432] = f"(c) {owner}"
            kw["tiffinfo"] = ti
            planted += ["ImageDescription", "Artist", "ModifyDate", "Copyright"]
        img.convert("RGB").save(path, "TIFF", compression=rng.choice(["tiff_lzw", "tiff_deflate", None]), **kw)
    elif fmt == "bmp":
        img.convert("RGB").save(path, "BMP")
    else:
        raise ValueError(fmt)
    return planted


class ExiftoolBatch:
    """Collect per-file exiftool writes and run them in one process at the end."""

    def __init__(self):
        self.jobs: list[tuple[Path, list[str]]] = []

    def add(self, path: Path, assignments: list[str]) -> None:
        self.jobs.append((path, assignments))

    def run(self) -> None:
        if not self.jobs:
            return
        args = []
        for path, assignments in self.jobs:
            args += ["-overwrite_original", "-q", "-q", *assignments, str(path), "-execute"]
        argfile = "\n".join(args).encode()
        proc = subprocess.run(["exiftool", "-charset", "utf8", "-@", "-"], input=argfile, capture_output=True)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"exiftool failed: {proc.stderr.decode(errors='replace')[:500]}")
        self.jobs.clear()


def iptc_assignments(owner: str, city: str) -> tuple[list[str], list[str]]:
    return ([f"-IPTC:By-line={owner}", f"-IPTC:City={city}", "-IPTC:Caption-Abstract=ward photo"],
            ["IPTC:By-line", "IPTC:City", "IPTC:Caption-Abstract"])
