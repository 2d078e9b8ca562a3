"""The documents for the court: the cover (卷宗封面/证据说明), in Chinese with English, and VERIFY.txt.

One :class:`Cover` rendered twice: HTML (any browser) and PDF (fpdf2, with a
CJK TrueType font embedded as a subset, so it prints the same everywhere).
Pure apart from reading the font file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vaultd.errors import ConfigError
from vaultd.i18n import _
from vaultd.safetext import escape, escape_html

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
    recorded: str  # start – end, station time (the zone is named in the table's header)
    sha256: str
    making_method: str
    making_time: str
    maker: str
    proves: str
    damaged: bool
    officer: str = "-"  # the officer who held the camera: name, 警号, unit


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
    made_at: str  # with its zone named
    disc: str  # "1 / 1"
    files: tuple[CoverFile, ...]
    verify_steps: tuple[VerifyStep, ...]
    zone: str = "Asia/Shanghai"  # the station's zone, in which every time here is shown


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
    e = escape_html
    head = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _rows(c))
    files = "".join(
        f"<tr><td>{e(f.path)}<br><small>{e(f.recording_id)}{' · 损坏 damaged' if f.damaged else ''}</small></td>"
        f"<td>{e(_size(f.size_bytes))}</td><td>{e(_duration(f.duration_s))}</td><td>{e(f.recorded)}</td>"
        f"<td>{e(f.making_method)}<br>{e(f.making_time)}<br>{e(f.maker)}</td><td>{e(f.officer)}</td>"
        f"<td>{e(f.proves, multiline=True)}</td>"
        f"<td><code>{e(f.sha256)}</code></td></tr>" for f in c.files)
    steps = "".join(f"<li><p>{e(s.zh)}</p><p>{e(s.en)}</p>"
                    + (f"<pre>{e(chr(10).join('$ ' + x for x in s.commands))}</pre>" if s.commands else "")
                    + "</li>" for s in c.verify_steps)
    doc = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>电子证据导出说明 Evidence export {e(c.export_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
th,td{{border:1px solid #999;padding:4px;vertical-align:top;text-align:left}}code{{font-size:80%;word-break:break-all}}
pre{{white-space:pre-wrap}}</style></head><body>
<h1>电子证据导出说明<br><small>Evidence export cover sheet</small></h1>
<table>{head}</table>
<h2>文件清单 Files</h2>
<table><tr><th>文件 File</th><th>大小 Size</th><th>时长 Duration</th><th>录制时间 Recorded ({e(c.zone)})</th>
<th>制作方法 / 制作时间 / 制作人<br>Method / time / maker</th><th>执法人员 Officer</th><th>证明对象 What it proves</th>
<th>SHA-256</th></tr>
{files}</table>
<h2>如何核验 How to verify</h2>
<p>本光盘无需信任 vaultd 即可用标准工具核验。机关 CA 证书必须从执法机关另行取得，不得使用光盘上的副本。<br>
This package verifies with standard tools, without trusting vaultd. Take the agency's CA certificate from the
agency, apart from the disc, never the copy on it.</p>
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
        pdf.multi_cell(w, 5, f"{k}: {escape(v)}", new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(3)
    pdf.set_font("cjk", size=12)
    pdf.multi_cell(w, 7, "文件清单 Files", new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_font("cjk", size=8)
    for n, f in enumerate(c.files, 1):
        lines = [
            f"{n}. {escape(f.path)}  ({f.recording_id}{', 损坏 damaged' if f.damaged else ''})",
            f"   大小 Size: {_size(f.size_bytes)}   时长 Duration: {_duration(f.duration_s)}",
            f"   录制时间 Recorded ({c.zone}): {f.recorded}",
            f"   执法人员 Officer: {escape(f.officer)}",
            f"   制作方法 Method: {escape(f.making_method)}   制作时间 Made: {escape(f.making_time)}   "
            f"制作人 Maker: {escape(f.maker)}",
            f"   证明对象 Proves: {escape(f.proves, multiline=True)}",
            f"   SHA-256: {f.sha256}",
        ]
        pdf.multi_cell(w, 4.2, "\n".join(lines), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.ln(1)
    pdf.set_font("cjk", size=12)
    pdf.multi_cell(w, 7, "如何核验 How to verify", new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_font("cjk", size=8)
    pdf.multi_cell(w, 4.2, "机关 CA 证书必须从执法机关另行取得，不得使用光盘上的副本。Take the agency's CA certificate "
                   "from the agency, apart from the disc, never the copy on it.",
                   new_x="LMARGIN", new_y="NEXT", align="L")
    for n, s in enumerate(c.verify_steps, 1):
        text = "\n".join([f"{n}. {s.zh}", f"   {s.en}", *(f"   $ {x}" for x in s.commands)])
        pdf.multi_cell(w, 4.2, text, new_x="LMARGIN", new_y="NEXT", align="L")
    return bytes(pdf.output())


# -- how to verify ------------------------------------------------------------------------------
#
# The steps are printed three times (VERIFY.txt, cover.html, cover.pdf) from one list, and the
# README's court flow runs the same commands; tests/security/test_court_check.py runs what is
# printed on good and forged packages. Two rules make the by-hand check sound:
# the CA comes from outside the package (a copy on the disc proves nothing: a forger ships his
# own), and tagmanifest-sha256.txt (the file the signature covers) is checked against the
# manifests and other tag files, so a changed payload manifest cannot slip through.

#: what a person replaces with their own paths (the test does the same)
CA_PLACEHOLDER = "/path/to/agency-ca.pem"
PKG_PLACEHOLDER = "/path/to/the/package"
TSA_PLACEHOLDER = "/path/to/tsa-ca.pem"


@dataclass(frozen=True)
class VerifyStep:
    """One step of the by-hand check: what it does (Chinese, then English) and its commands,
    run in order in one shell."""

    zh: str
    en: str
    commands: tuple[str, ...] = ()


def colon_fingerprint(hex_digest: str) -> str:
    """``91:41:54:…`` as ``openssl x509 -fingerprint -sha256`` prints it."""
    up = hex_digest.upper()
    return ":".join(up[i:i + 2] for i in range(0, len(up), 2))


def verify_steps(ca_fp: str, log_key: str, timestamp: bool) -> tuple[VerifyStep, ...]:
    fp = colon_fingerprint(ca_fp)
    steps = [
        VerifyStep(
            "从执法机关另行取得其公布的机关 CA 证书（不要使用本光盘或本导出包里的 agency-ca.pem 副本，"
            "伪造者会附上自己的副本），存放在导出包以外，把 CA 设为它的绝对路径；把 PKG 设为本导出包的"
            "文件夹（光盘的根目录）。",
            "Get the agency's CA certificate from the agency, apart from this disc (never the copy "
            "agency-ca.pem on the disc or in the package: a forger ships his own), keep it outside the "
            "package and set CA to its absolute path; set PKG to this package's folder (the disc's root).",
            (f"CA={CA_PLACEHOLDER}", f"PKG={PKG_PLACEHOLDER}")),
        VerifyStep(
            "核对该 CA 证书：显示的 SHA-256 指纹必须与执法机关公布的指纹完全一致，否则停止核验。本包制作时"
            f"所用 CA 的指纹为 {fp}；此数字印在包内，只能参考，不能代替机关公布的指纹。",
            "Check that CA: the SHA-256 fingerprint shown must equal the one the agency published; if not, "
            f"stop. This package was made with the CA {fp}; that figure is printed inside the package, "
            "so it is a reference only and never replaces the published one.",
            ('openssl x509 -noout -fingerprint -sha256 -in "$CA"',)),
        VerifyStep(
            "先核对标签清单 tagmanifest-sha256.txt：文件清单 manifest-*.txt、bag-info.txt、封面、"
            "VERIFY.txt 等每一行都必须显示 OK（它保证文件清单没有被改过）。",
            "First check the tag manifest tagmanifest-sha256.txt: every line (the manifests manifest-*.txt, "
            "bag-info.txt, the cover, VERIFY.txt, ...) must say OK (this proves the manifests were not changed).",
            ('cd "$PKG"', "sha256sum -c --strict tagmanifest-sha256.txt")),
        VerifyStep(
            "再核对文件清单 manifest-sha256.txt：每个原始文件及 data/ 下每个文件都必须显示 OK。",
            "Then check the payload manifest manifest-sha256.txt: every original and every file under "
            "data/ must say OK.",
            ("sha256sum -c --strict manifest-sha256.txt",)),
        VerifyStep(
            "最后用上面的 CA 核验对 tagmanifest-sha256.txt 的 CMS 签名，必须显示 Verification successful。"
            "签名覆盖标签清单，标签清单覆盖文件清单，文件清单覆盖每个文件：三步都通过，才证明每个文件都是"
            "该机关签名时的原样。",
            "Last, check the CMS signature over tagmanifest-sha256.txt with that CA: it must print "
            "Verification successful. The signature covers the tag manifest, the tag manifest covers the "
            "manifests, the manifests cover every file: only the three steps together prove every file is "
            "as the agency signed it.",
            ("openssl cms -verify -binary -inform DER -in signature/tagmanifest-sha256.txt.p7s "
             '-content tagmanifest-sha256.txt -CAfile "$CA" -purpose any -out /dev/null',)),
    ]
    if timestamp:
        steps.append(VerifyStep(
            "核验可信时间戳（RFC 3161）：TSA_CA 为时间戳机构的 CA 证书（同样从包外取得），必须显示 "
            "Verification: OK。",
            "Check the trusted timestamp (RFC 3161): TSA_CA is the timestamp authority's CA certificate "
            "(also from outside the package); it must print Verification: OK.",
            (f"TSA_CA={TSA_PLACEHOLDER}",
             "openssl ts -verify -in signature/tagmanifest-sha256.txt.p7s.tsr "
             '-data signature/tagmanifest-sha256.txt.p7s -CAfile "$TSA_CA"')))
    tsa = ' --tsa-ca "$TSA_CA"' if timestamp else ""
    steps.append(VerifyStep(
        "（可选，需要安装 vaultd）一次完成以上全部核验，并核验 data/custody 中每条审计日志证明；日志公钥"
        "也必须与执法机关公布的一致。必须显示 PASS。",
        "(Optional, with vaultd installed) all of the above in one command, plus every audit-log proof in "
        "data/custody; the log key, too, must be the one the agency published. It must print PASS.",
        (f"vaultd verify \"$PKG\" --ca \"$CA\" --log-key '{log_key}'{tsa}",)))
    return tuple(steps)


def verify_text(export_id: str, agency: str, ca_fp: str, log_key: str, steps: tuple[VerifyStep, ...]) -> bytes:
    """VERIFY.txt: every paragraph in Chinese, then in English; commands on lines of their own
    starting with ``$ `` (what a person types, and what the court-check test runs)."""
    fp = colon_fingerprint(ca_fp)
    lines = [
        f"如何核验本导出包 {export_id}",
        f"How to verify export package {export_id}",
        "",
        f"执法机关 Agency: {agency or '—'}",
        "",
        "本导出包是 BagIt 包（RFC 8493），用标准工具（sha256sum、openssl）即可核验，无需信任 vaultd。"
        "包内附带的信任锚（agency-ca.pem、data/custody/log-key.txt）只是副本，必须与执法机关另行公布的"
        "核对：",
        "This package is a BagIt bag (RFC 8493). It proves itself with standard tools (sha256sum, "
        "openssl); nothing here asks you to trust vaultd. The anchors carried in the package "
        "(agency-ca.pem, data/custody/log-key.txt) are copies: compare them with those the agency "
        "publishes apart from the disc:",
        f"  机关 CA 的 SHA-256 指纹 / agency CA SHA-256 fingerprint:  {fp}",
        f"  审计日志公钥 / audit log verifier key:                    {log_key}",
        "",
        "按顺序逐条执行以 $ 开头的命令（bash，同一个终端窗口）；任一条失败（非 0 退出、FAILED）即停止：本包不可信。",
        "Run the commands that start with $ in order, in one bash terminal; if any fails (non-zero exit, "
        "FAILED), stop: the package is not to be trusted.",
        "",
    ]
    for n, s in enumerate(steps, 1):
        lines += [f"第 {n} 步  {s.zh}", f"Step {n}.  {s.en}"]
        lines += [f"    $ {c}" for c in s.commands]
        lines.append("")
    lines += [
        "手工核验审计日志证明（RFC 6962 / C2SP tlog）：",
        "The audit-log proofs by hand (RFC 6962 / C2SP tlog):",
        "  文件名中的 NNNNNNNNNNNN 是审计记录的序号 N，补零至 12 位（第 6 条：000000000006）。",
        "  In the file names, NNNNNNNNNNNN is the entry's index N, zero-padded to 12 digits (entry 6:",
        "  000000000006).",
        "  - data/custody/entries/NNNNNNNNNNNN.json 是第 N 条审计记录的原始字节；其叶哈希为 SHA-256(0x00 || 字节)。",
        "    data/custody/entries/NNNNNNNNNNNN.json are the exact bytes of audit entry N; its leaf hash is",
        "    SHA-256(0x00 || bytes):",
        "      (printf '\\000'; cat data/custody/entries/NNNNNNNNNNNN.json) | sha256sum",
        "  - data/custody/proofs/NNNNNNNNNNNN.tlog-proof 是 c2sp.org/tlog-proof@v1：序号、审计路径和签名检查点",
        "    （data/custody/checkpoint.txt：来源、大小、base64 根哈希，以及上面日志公钥的 Ed25519 签名）。",
        "    data/custody/proofs/NNNNNNNNNNNN.tlog-proof is a c2sp.org/tlog-proof@v1: index, the audit",
        "    path, and the signed checkpoint (data/custody/checkpoint.txt: origin, size, base64 root,",
        "    then the Ed25519 signature by the log key above).",
        "  - 按 RFC 9162 第 2.1.3.2 节沿路径计算，结果必须等于检查点的根哈希；任何 C2SP tlog 客户端",
        "    （如 Go 的 golang.org/x/mod/sumdb/tlog）都可完成。",
        "    Hash the leaf up the path as RFC 9162 section 2.1.3.2 says; the result must equal the",
        "    checkpoint's root. Any C2SP tlog client (e.g. Go's golang.org/x/mod/sumdb/tlog) does this.",
        "  - data/custody/consistency.txt 证明本检查点是上一次导出所带检查点（previous-checkpoint.txt）",
        "    的延续，即两次导出之间日志未被改写。",
        "    data/custody/consistency.txt proves this checkpoint extends previous-checkpoint.txt (the one",
        "    the previous export carried), so the log was not rewritten between exports.",
        "  - data/custody/index.json 列出每个录像的相关记录；其入库记录中的原始文件 SHA-256 必须与",
        "    manifest-sha256.txt 中的一行相同。",
        "    data/custody/index.json lists, per recording, the entries about it; its ingest entry",
        "    records the SHA-256 of the original, which must equal the line in manifest-sha256.txt.",
        "",
    ]
    return "\n".join(lines).encode("utf-8")
