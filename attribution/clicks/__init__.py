"""Stage 1, GET /c/<code>: the link, the click row, the destination with the click id in it."""
