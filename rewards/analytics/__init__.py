"""Marketing's figures: daily rollups kept equal to a recount of the raw rows, the
dashboard read from them, unique-visitor sketches, referrer tallies, and CSV exports."""
