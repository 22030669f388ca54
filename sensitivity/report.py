"""The readable table of a sensitivity document (`python -m sensitivity` prints it): one row per
group with its accuracy drop and energy saved on each candidate multiplier and the greedy
choice, then the greedy assignment against each uniform one and each given genotype's."""

from __future__ import annotations

NAME_WIDTH = 34
CELL_WIDTH = 17  # "+0.0312 / 0.0123"


def table(document: dict) -> str:
    return "\n".join([*_heading(document), "", *_group_rows(document), "",
                      *_comparison(document)])


def _heading(document: dict) -> list[str]:
    trained = document["trained"]
    return [f"sensitivity of {document['run_dir']}: {document['test_images']} test images, "
            f"emulation mode {document['mode']}, energy per image on {document['accelerator']}",
            f"as trained: accuracy {trained['accuracy']:.4f}, energy "
            f"{trained['energy_uj']:.4f} µJ; each multiplier column: accuracy drop / energy "
            f"saved (µJ) with that group alone moved"]


def _group_rows(document: dict) -> list[str]:
    multipliers = document["multipliers"]
    cells = {(r["group"], r["multiplier"]): f"{r['accuracy_drop']:+.4f} / "
             f"{r['energy_saved_uj']:.4f}" for r in document["sensitivity"]}
    chosen = document["greedy"]["assignment"]
    header = (f"{'group':<{NAME_WIDTH}} {'convs':>5} {'MACs':>12} {'trained':<12}"
              + "".join(f" {m:>{CELL_WIDTH}}" for m in multipliers) + "  greedy")
    rows = [header]
    for group in document["groups"]:
        name = group["name"]
        rows.append(f"{_clip(name, NAME_WIDTH):<{NAME_WIDTH}} {len(group['layers']):>5} "
                    f"{group['macs']:>12,} {_clip(group['multiplier'], 12):<12}"
                    + "".join(f" {cells[name, m]:>{CELL_WIDTH}}" for m in multipliers)
                    + f"  {chosen[name]}")
    if document["float_layers"]:
        rows.append(f"(float32, in no group: {len(document['float_layers'])} layers)")
    return rows


def _comparison(document: dict) -> list[str]:
    trained_uj = document["trained"]["energy_uj"]
    greedy = document["greedy"]
    rows = [f"{'assignment':<{NAME_WIDTH}} {'accuracy':>9} {'drop':>8} {'energy_uj':>11} "
            f"{'saved':>7}"]
    entries = [(f"greedy (tolerance {document['tolerance']:g})", greedy)]
    entries += [(f"uniform {u['multiplier']}", u) for u in document["uniform"]]
    entries += [(f"given {c['genotype']}", c) for c in document.get("compared", [])]
    for label, entry in entries:
        saved = 1 - entry["energy_uj"] / trained_uj if trained_uj else 0.0
        rows.append(f"{_clip(label, NAME_WIDTH):<{NAME_WIDTH}} {entry['accuracy']:>9.4f} "
                    f"{entry['accuracy_drop']:>+8.4f} {entry['energy_uj']:>11.4f} "
                    f"{saved:>7.1%}")
    kept = sum(step["kept"] for step in greedy["steps"])
    rows.append(f"greedy: {len(greedy['steps'])} moves tried, {kept} kept; "
                f"{document['evaluations']} evaluations in {document['elapsed_s']:.1f} s")
    return rows


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]
