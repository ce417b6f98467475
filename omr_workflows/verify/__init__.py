"""Verification: planning work units, checking them, shard reports and their merge."""
