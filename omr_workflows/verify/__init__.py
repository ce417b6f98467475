"""Verification: planning work units, checking them, shard reports and their merge.

plan.py (pure, deterministic planner), run.py (gathering and checking one shard with
threads), report.py (pydantic formats: plan, shard report, merged report), merge.py
(coverage proof and the guard against edited reports), check.py (`resolve --verify`).
"""
