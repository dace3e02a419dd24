"""Stage 6, the affiliates' own postbacks: when they go out, and delivering them safely."""
