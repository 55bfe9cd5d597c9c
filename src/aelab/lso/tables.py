"""Markdown tables of LSO results (the study table and the per-target table)."""
from __future__ import annotations

import math

# (key, header, format)
STUDY_COLUMNS = [("method", "method", "{}"), ("decoder_mse", "decoder test MSE", "{:.4f}"),
                 ("paper_decoder_mse", "paper MSE", "{:.4f}"), ("threshold", "threshold", "{:g}"),
                 ("success_rate", "success", "{:.0%}"), ("success_at_0.001", "success @0.001", "{:.0%}"),
                 ("one_start_success", "one-start success", "{:.0%}"),
                 ("paper_success_rate", "paper success", "{:.0%}"), ("steps", "steps", "{:.0f}"),
                 ("judge_accuracy", "judge acc.", "{:.0%}"), ("recon_error", "AE recon err.", "{:.4f}"),
                 ("nearest_train", "NN dist.", "{:.2f}"), ("diversity", "diversity", "{:.2f}"),
                 ("fid", "FID (judge)", "{:.1f}"), ("fid_real_floor", "FID floor", "{:.1f}"),
                 ("precision", "precision", "{:.2f}"), ("recall", "recall", "{:.2f}"),
                 ("seconds", "s", "{:.1f}")]
TARGET_COLUMNS = [("target", "target", "{}"), ("n", "n", "{}"), ("success_rate", "success", "{:.0%}"),
                  ("steps_to_success", "steps", "{:.1f}"), ("judge_accuracy", "judge acc.", "{:.0%}"),
                  ("recon_error", "AE recon err.", "{:.4f}"), ("nearest_train", "NN dist.", "{:.2f}"),
                  ("diversity", "diversity", "{:.2f}")]


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return fmt.format(value)


def markdown(rows: list[dict], columns=STUDY_COLUMNS) -> str:
    """A GitHub markdown table; missing or non-finite values print as a dash."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(_cell(r.get(k), f) for k, _, f in columns) + " |\n" for r in rows)


def per_target_markdown(table: list[dict]) -> str:
    return markdown(table, TARGET_COLUMNS)
