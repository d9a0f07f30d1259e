"""Scans ASan/LSan/UBSan log files: exit 1 on any memory error, UB report, or leak whose stack
passes through ternhd's native code; prints a summary either way."""
import re
import sys
from pathlib import Path

OURS = re.compile(r"ternhd::|ternhd/_core\.|csrc/")


def scan(logdir: Path) -> int:
    errors, our_leaks, other_leaks = [], [], 0
    for f in sorted(logdir.glob("*")):
        text = f.read_text(errors="replace")
        if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
            errors.append(f"{f.name}:\n{text[:4000]}")
        for block in re.split(r"\n(?=(?:Direct|Indirect) leak of)", text):
            if not re.match(r"(?:Direct|Indirect) leak of", block):
                continue
            if OURS.search(block):
                our_leaks.append(block[:3000])
            else:
                other_leaks += 1
    print(f"sanitizers: {len(errors)} error report(s), {len(our_leaks)} leak(s) through ternhd code, "
          f"{other_leaks} leak report(s) elsewhere (interpreter/torch objects alive at exit)")
    for e in errors + our_leaks:
        print(e)
    return 1 if errors or our_leaks else 0


if __name__ == "__main__":
    sys.exit(scan(Path(sys.argv[1])))
