"""The documents for the court: the cover (卷宗封面/证据说明), in Chinese with English, and VERIFY.txt.

One :class:`Cover` rendered twice: HTML (any browser) and PDF (fpdf2, with a
CJK TrueType font embedded as a subset, so it prints the same everywhere).
Pure apart from reading the font file.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from vaultd.errors import ConfigError
from vaultd.i18n import _

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)


@dataclass(frozen=True)
class CoverFile:
    path: str  # inside the package
    recording_id: str
    size_bytes: int
    duration_s: float | None
    recorded: str  # start – end, station time
    sha256: str
    making_method: str
    making_time: str
    maker: str
    proves: str
    damaged: bool


@dataclass(frozen=True)
class Cover:
    export_id: str
    agency: str
    case_number: str
    purpose: str
    requester: str
    approver: str
    grant_id: str
    made_by: str
    made_at: str
    disc: str  # "1 / 1"
    files: tuple[CoverFile, ...]
    verify_steps: tuple[str, ...]


def _rows(c: Cover) -> list[tuple[str, str]]:
    return [
        ("执法机关 Agency", c.agency or "—"),
        ("案件编号 Case number", c.case_number or "—"),
        ("导出编号 Export id", c.export_id),
        ("光盘 Disc", c.disc),
        ("用途 Purpose", c.purpose),
        ("申请人 Requester", c.requester),
        ("批准人 Approver", c.approver),
        ("审批编号 Grant", c.grant_id),
        ("制作人 Made by", c.made_by),
        ("制作时间 Made at", c.made_at),
        ("制作方法 Making method",
         "vaultd 从只读原始存储逐字节复制，SHA-256/SHA-512 校验，CMS 签名 / byte-identical copies of the "
         "write-once originals, hashed with SHA-256 and SHA-512, signed (CMS)"),
    ]


def _duration(s: float | None) -> str:
    if s is None:
        return "—"
    m, sec = divmod(int(round(s)), 60)
    return f"{m // 60:d}:{m % 60:02d}:{sec:02d}"


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1 << 20 else f"{n / (1 << 20):,.1f} MiB ({n:,} B)"


def render_html(c: Cover) -> bytes:
    e = html.escape
    head = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _rows(c))
    files = "".join(
        f"<tr><td>{e(f.path)}<br><small>{e(f.recording_id)}{' · 损坏 damaged' if f.damaged else ''}</small></td>"
        f"<td>{e(_size(f.size_bytes))}</td><td>{e(_duration(f.duration_s))}</td><td>{e(f.recorded)}</td>"
        f"<td>{e(f.making_method)}<br>{e(f.making_time)}<br>{e(f.maker)}</td><td>{e(f.proves)}</td>"
        f"<td><code>{e(f.sha256)}</code></td></tr>" for f in c.files)
    steps = "".join(f"<li><pre>{e(s)}</pre></li>" for s in c.verify_steps)
    doc = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>电子证据导出说明 Evidence export {e(c.export_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
th,td{{border:1px solid #999;padding:4px;vertical-align:top;text-align:left}}code{{font-size:80%;word-break:break-all}}
pre{{white-space:pre-wrap}}</style></head><body>
<h1>电子证据导出说明<br><small>Evidence export cover sheet</small></h1>
<table>{head}</table>
<h2>文件清单 Files</h2>
<table><tr><th>文件 File</th><th>大小 Size</th><th>时长 Duration</th><th>录制时间 Recorded (station time)</th>
<th>制作方法 / 制作时间 / 制作人<br>Method / time / maker</th><th>证明对象 What it proves</th><th>SHA-256</th></tr>
{files}</table>
<h2>如何核验 How to verify</h2>
<p>本光盘无需信任 vaultd 即可用标准工具核验。This package verifies with standard tools, without trusting vaultd.</p>
<ol>{steps}</ol>
</body></html>
"""
    return doc.encode("utf-8")


def find_font(configured: str) -> Path:
    if configured:
        p = Path(configured)
        if not p.is_file():
            raise ConfigError(_("export.cover_font %s does not exist") % configured)
        return p
    for cand in FONT_CANDIDATES:
        if Path(cand).is_file():
            return Path(cand)
    raise ConfigError(_("no CJK font found for the PDF cover"),
                      hint=_("install fonts-wqy-microhei (Debian) or set export.cover_font to a TTF/TTC file"))


def render_pdf(c: Cover, font: Path) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(f"Evidence export {c.export_id}")
    pdf.add_font("cjk", "", str(font), collection_font_number=0)
    pdf.add_page()
    w = pdf.epw
    pdf.set_font("cjk", size=16)
    pdf.multi_cell(w, 9, "电子证据导出说明  Evidence export cover sheet", new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_font("cjk", size=9)
    for k, v in _rows(c):
        pdf.multi_cell(w, 5, f"{k}: {v}", new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(3)
    pdf.set_font("cjk", size=12)
    pdf.multi_cell(w, 7, "文件清单 Files", new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_font("cjk", size=8)
    for n, f in enumerate(c.files, 1):
        lines = [
            f"{n}. {f.path}  ({f.recording_id}{', 损坏 damaged' if f.damaged else ''})",
            f"   大小 Size: {_size(f.size_bytes)}   时长 Duration: {_duration(f.duration_s)}",
            f"   录制时间 Recorded: {f.recorded}",
            f"   制作方法 Method: {f.making_method}   制作时间 Made: {f.making_time}   制作人 Maker: {f.maker}",
            f"   证明对象 Proves: {f.proves}",
            f"   SHA-256: {f.sha256}",
        ]
        pdf.multi_cell(w, 4.2, "\n".join(lines), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.ln(1)
    pdf.set_font("cjk", size=12)
    pdf.multi_cell(w, 7, "如何核验 How to verify", new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_font("cjk", size=8)
    for n, s in enumerate(c.verify_steps, 1):
        pdf.multi_cell(w, 4.2, f"{n}. {s}", new_x="LMARGIN", new_y="NEXT", align="L")
    return bytes(pdf.output())


# -- how to verify ------------------------------------------------------------------------------

def verify_steps(ca_fp: str, log_key: str, timestamp: bool) -> tuple[str, ...]:
    steps = [
        "cd <the disc or the package folder> && sha256sum -c tagmanifest-sha256.txt && sha256sum -c "
        "manifest-sha256.txt   (sha512sum -c on the *-sha512.txt files too)",
        "openssl cms -verify -binary -inform DER -in signature/tagmanifest-sha256.txt.p7s "
        "-content tagmanifest-sha256.txt -CAfile AGENCY-CA.pem -purpose any -out /dev/null   "
        f"(AGENCY-CA.pem: the agency's CA obtained from the agency, SHA-256 fingerprint {ca_fp}; "
        "a copy is agency-ca.pem, compare the fingerprint: openssl x509 -in agency-ca.pem -noout "
        "-fingerprint -sha256)",
    ]
    if timestamp:
        steps.append("openssl ts -verify -in signature/tagmanifest-sha256.txt.p7s.tsr -data "
                     "signature/tagmanifest-sha256.txt.p7s -CAfile TSA-CA.pem")
    tsa = " --tsa-ca TSA-CA.pem" if timestamp else ""
    steps.append("vaultd verify . --ca AGENCY-CA.pem --log-key '" + log_key + "'" + tsa + "   (checks all of the above "
                 "and every audit-log proof in data/custody against the checkpoint signed by that log key)")
    return tuple(steps)


def verify_text(export_id: str, ca_fp: str, log_key: str, steps: tuple[str, ...]) -> bytes:
    lines = [
        f"如何核验本导出包 / How to verify export {export_id}",
        "",
        "This package is a BagIt bag (RFC 8493). It proves itself with standard tools;",
        "nothing here asks you to trust vaultd. Anchors carried in the package (agency-ca.pem,",
        "data/custody/log-key.txt) must be compared with those the agency publishes:",
        f"  agency CA SHA-256 fingerprint: {ca_fp}",
        f"  audit log verifier key:        {log_key}",
        "",
        "Steps (run from the package's folder, e.g. the disc's root):",
        "",
    ]
    for n, s in enumerate(steps, 1):
        lines += [f"{n}. {s}", ""]
    lines += [
        "The audit-log proofs by hand (RFC 6962 / C2SP tlog):",
        "  - data/custody/entries/N.json are the exact bytes of audit entry N; its leaf hash is",
        "    SHA-256(0x00 || bytes):  (printf '\\000'; cat data/custody/entries/N.json) | sha256sum",
        "  - data/custody/proofs/N.tlog-proof is a c2sp.org/tlog-proof@v1: index, the audit path,",
        "    and the signed checkpoint (data/custody/checkpoint.txt: origin, size, base64 root,",
        "    then the Ed25519 signature by the log key above).",
        "  - hash the leaf up the path as RFC 9162 section 2.1.3.2 says; the result must equal the",
        "    checkpoint's root. Any C2SP tlog client (e.g. Go's golang.org/x/mod/sumdb/tlog) does this.",
        "  - data/custody/consistency.txt proves this checkpoint extends previous-checkpoint.txt (the",
        "    one the previous export carried), so the log was not rewritten between exports.",
        "  - data/custody/index.json lists, per recording, the entries about it; its ingest entry",
        "    records the SHA-256 of the original, which must equal the line in manifest-sha256.txt.",
        "",
    ]
    return "\n".join(lines).encode("utf-8")
