"""`python -m approx.convert SRC_DIR OUT_DIR`: compile EvoApproxLib C models into .bin truth tables.

Each SRC_DIR/mul8u_XXXX.c (defining `uint16_t mul8u_XXXX(uint8_t A, uint8_t B)`) or mul8s_XXXX.c
(`int16_t mul8s_XXXX(int8_t A, int8_t B)`) is compiled with the system C compiler together with a
generated driver that evaluates all 65,536 operand pairs and writes OUT_DIR/<name>.bin
(entry a*256+b, little-endian 16-bit; signed operands indexed by bit pattern).
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from approx.binfile import TABLE_BYTES
from approx.errors import MultiplierError
from runner.errors import exit_status

MODEL_NAME = re.compile(r"mul8[su]_\w+")
DRIVER = """\
#include <stdint.h>
#include <stdio.h>
{result} {name}({operand} A, {operand} B);
int main(int argc, char **argv) {{
    FILE *out = fopen(argv[1], "wb");
    if (out == NULL) return 1;
    for (int a = 0; a < 256; a++) {{
        for (int b = 0; b < 256; b++) {{
            uint16_t bits = (uint16_t) {name}(({operand}) (uint8_t) a, ({operand}) (uint8_t) b);
            fputc(bits & 0xFF, out);
            fputc(bits >> 8, out);
        }}
    }}
    return fclose(out) != 0;
}}
"""


def driver_source(name: str) -> str:
    signed = name.startswith("mul8s")
    return DRIVER.format(
        name=name,
        result="int16_t" if signed else "uint16_t",
        operand="int8_t" if signed else "uint8_t",
    )


def compiler() -> str:
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if found is None:
        raise MultiplierError("no C compiler (cc, gcc or clang) on PATH; install one to convert")
    return found


def run_checked(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise MultiplierError(f"{what} failed: {result.stderr.strip() or result.returncode}")


def convert_model(source: Path, out_dir: Path) -> Path:
    """Compile one C model with the driver, run it, and return the written .bin path."""
    name = source.stem
    target = out_dir / f"{name}.bin"
    with tempfile.TemporaryDirectory() as work:
        driver = Path(work) / "driver.c"
        driver.write_text(driver_source(name))
        program = Path(work) / "table"
        run_checked([compiler(), "-O1", "-o", str(program), str(driver), str(source)],
                    f"compiling {source}")
        run_checked([str(program), str(target)], f"evaluating {source}")
    if target.stat().st_size != TABLE_BYTES:
        raise MultiplierError(f"{target}: driver wrote {target.stat().st_size} bytes")
    return target


def convert_directory(src_dir: Path, out_dir: Path) -> list[Path]:
    """Convert every mul8u_*.c / mul8s_*.c in src_dir (searched recursively)."""
    if not src_dir.is_dir():
        raise MultiplierError(f"SRC_DIR {src_dir} is not a directory of EvoApproxLib C models")
    sources = sorted(p for p in src_dir.rglob("*.c") if MODEL_NAME.fullmatch(p.stem))
    if not sources:
        raise MultiplierError(f"SRC_DIR {src_dir} holds no mul8u_*.c or mul8s_*.c C models")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [convert_model(source, out_dir) for source in sources]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m approx.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src_dir", type=Path, help="folder with EvoApproxLib 8x8 C models")
    parser.add_argument("out_dir", type=Path, help="folder for the .bin tables (--lut_dir)")
    args = parser.parse_args(argv)
    return exit_status(lambda: convert_and_report(args.src_dir, args.out_dir))


def convert_and_report(src_dir: Path, out_dir: Path) -> None:
    written = convert_directory(src_dir, out_dir)
    print(f"wrote {len(written)} truth tables to {out_dir}")


if __name__ == "__main__":
    sys.exit(main())
